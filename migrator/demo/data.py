"""The demo region's fictional organisations, groups and names."""

from __future__ import annotations

import random

from migrator.max.models import REQUIRED_PERMISSIONS

REGION_CODE = "REGION"
REGION_NAME = "Северо-Уральская область"
ADMIN = ("admin@example.org", "demo-admin-2026")
COORDINATOR = ("coordinator@example.org", "demo-coord-2026", "MO-LES")
AUDITOR = ("auditor@example.org", "demo-audit-2026")
FULL_RIGHTS = ",".join(REQUIRED_PERMISSIONS)

# code, name, parent code, mail domain, number of staff
ORGS = [
    ("REGION", "Правительство Северо-Уральской области", None, "pravo.sev-ural.example", 10),
    ("MINOBR", "Министерство образования Северо-Уральской области", "REGION",
     "minobr.sev-ural.example", 9),
    ("MINZKH", "Министерство энергетики и ЖКХ Северо-Уральской области", "REGION",
     "minzkh.sev-ural.example", 8),
    ("MINZDRAV", "Министерство здравоохранения Северо-Уральской области", "REGION",
     "minzdrav.sev-ural.example", 8),
    ("ZDRAV-LCGB", "ГБУЗ «Лесногорская центральная городская больница»", "MINZDRAV",
     "lcgb.example.org", 8),
    ("MFC", "ГАУ «МФЦ Северо-Уральской области»", "REGION", "mfc.sev-ural.example", 8),
    ("MO-LES", "Администрация Лесногорского городского округа", "REGION",
     "les-adm.example.org", 9),
    ("MO-LES-SCH3", "МАОУ «Средняя общеобразовательная школа № 3» г. Лесногорска", "MO-LES",
     "school3-les.example.org", 9),
    ("MO-LES-TEPLO", "МУП «Лесногорские тепловые сети»", "MO-LES", "teplo-les.example.org", 8),
    ("MO-LES-MFC", "Филиал МФЦ в г. Лесногорске", "MO-LES", "mfc.sev-ural.example", 6),
    ("MO-REC", "Администрация Реченского муниципального района", "REGION",
     "rech-adm.example.org", 8),
    ("MO-REC-SCH1", "МБОУ «Реченская средняя школа № 1»", "MO-REC", "school1-rech.example.org",
     8),
    ("MO-REC-VODO", "МУП «Реченский водоканал»", "MO-REC", "vodokanal-rech.example.org", 7),
    ("MO-REC-MFC", "Филиал МФЦ в с. Речное", "MO-REC", "mfc.sev-ural.example", 6),
]

HEAD_POSITIONS = {
    "REGION": "Руководитель аппарата правительства", "MINOBR": "Министр образования",
    "MINZKH": "Министр энергетики и ЖКХ", "MINZDRAV": "Министр здравоохранения",
    "ZDRAV-LCGB": "Главный врач", "MFC": "Директор", "MO-LES": "Глава городского округа",
    "MO-LES-SCH3": "Директор школы", "MO-LES-TEPLO": "Директор", "MO-LES-MFC": "Начальник филиала",
    "MO-REC": "Глава района", "MO-REC-SCH1": "Директор школы", "MO-REC-VODO": "Директор",
    "MO-REC-MFC": "Начальник филиала",
}
POSITIONS = ["Заместитель руководителя", "Начальник отдела", "Консультант", "Главный специалист",
             "Ведущий специалист", "Специалист 1 категории", "Инженер", "Бухгалтер",
             "Юрисконсульт", "Секретарь", "Учитель", "Оператор"]

# key, name, platform, org code, member source org codes, wave, state
GROUPS = [
    ("wa-gov-shtab", "Оперативный штаб правительства", "whatsapp", "REGION",
     ["REGION", "MINOBR", "MINZKH", "MINZDRAV", "MFC"], 1, "done"),
    ("wa-gov-press", "Пресс-служба: согласования", "whatsapp", "REGION", ["REGION"], 1, "done"),
    ("wa-minobr-ruk", "Руководство Минобразования", "whatsapp", "MINOBR", ["MINOBR"], 1, "done"),
    ("tg-minobr-dir", "Директора школ области", "telegram", "MINOBR",
     ["MINOBR", "MO-LES-SCH3", "MO-REC-SCH1"], 1, "waiting_cutover"),
    ("wa-minzkh-disp", "Диспетчерская ЖКХ", "whatsapp", "MINZKH",
     ["MINZKH", "MO-LES-TEPLO", "MO-REC-VODO"], 1, "failed_add"),
    ("wa-minzdrav-ruk", "Минздрав: оперативные вопросы", "whatsapp", "MINZDRAV",
     ["MINZDRAV", "ZDRAV-LCGB"], 1, "missing_rights"),
    ("tg-lcgb-smena", "ЦГБ: дежурная смена", "telegram", "ZDRAV-LCGB", ["ZDRAV-LCGB"], None,
     "discovered"),
    ("wa-mfc-ruk", "МФЦ: руководители филиалов", "whatsapp", "MFC",
     ["MFC", "MO-LES-MFC", "MO-REC-MFC"], 4, "overdue"),
    ("wa-les-adm", "Администрация Лесногорска", "whatsapp", "MO-LES", ["MO-LES"], 2,
     "waiting_announce"),
    ("wa-les-sch3-ped", "Школа № 3: педсовет", "whatsapp", "MO-LES-SCH3", ["MO-LES-SCH3"], 2,
     "adding"),
    ("wa-les-sch3-par", "Школа № 3: классные руководители", "whatsapp", "MO-LES-SCH3",
     ["MO-LES-SCH3"], 2, "failed_invite"),
    ("tg-les-teplo", "Тепловые сети: аварийная служба", "telegram", "MO-LES-TEPLO",
     ["MO-LES-TEPLO"], 2, "removed"),
    ("wa-les-mfc", "МФЦ Лесногорск: смена", "whatsapp", "MO-LES-MFC", ["MO-LES-MFC"], 2,
     "adding"),
    ("wa-rec-adm", "Администрация Реченского района", "whatsapp", "MO-REC", ["MO-REC"], 3,
     "planned"),
    ("wa-rec-sch1", "Реченская школа № 1: учителя", "whatsapp", "MO-REC-SCH1", ["MO-REC-SCH1"],
     3, "planned"),
    ("tg-rec-vodo", "Водоканал: бригады", "telegram", "MO-REC-VODO", ["MO-REC-VODO"], 3,
     "planned"),
    ("wa-rec-mfc", "МФЦ Речное", "whatsapp", "MO-REC-MFC", ["MO-REC-MFC"], None, "none"),
    ("vb-rec-zkh", "ЖКХ района (Viber)", "viber", "MO-REC", ["MO-REC", "MO-REC-VODO"], None,
     "none"),
    ("wa-minzkh-energo", "Энергетики: штаб зимы", "whatsapp", "MINZKH", ["MINZKH"], None, "none"),
]

MALE = ["Александр", "Алексей", "Андрей", "Дмитрий", "Евгений", "Иван", "Игорь", "Константин",
        "Михаил", "Николай", "Олег", "Павел", "Роман", "Сергей", "Юрий", "Владимир", "Артём"]
FEMALE = ["Анна", "Елена", "Екатерина", "Ирина", "Марина", "Мария", "Наталья", "Ольга",
          "Светлана", "Татьяна", "Юлия", "Галина", "Людмила", "Дарья", "Вера"]
PATRONYMICS = [("Александрович", "Александровна"), ("Алексеевич", "Алексеевна"),
               ("Андреевич", "Андреевна"), ("Викторович", "Викторовна"),
               ("Владимирович", "Владимировна"), ("Геннадьевич", "Геннадьевна"),
               ("Дмитриевич", "Дмитриевна"), ("Евгеньевич", "Евгеньевна"),
               ("Иванович", "Ивановна"), ("Игоревич", "Игоревна"), ("Михайлович", "Михайловна"),
               ("Николаевич", "Николаевна"), ("Олегович", "Олеговна"), ("Петрович", "Петровна"),
               ("Сергеевич", "Сергеевна"), ("Юрьевич", "Юрьевна")]
SURNAMES = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов",
            "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев",
            "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев",
            "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев",
            "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов", "Александров",
            "Дмитриев", "Королёв", "Гусев", "Киселёв", "Ильин", "Максимов", "Поляков", "Сорокин",
            "Виноградов", "Ковалёв", "Белов", "Медведев", "Антонов", "Тарасов", "Жуков",
            "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев", "Герасимов", "Богданов",
            "Осипов", "Сидоров", "Матвеев", "Титов", "Марков", "Миронов", "Крылов", "Куликов",
            "Карпов", "Власов", "Мельников", "Денисов", "Гаврилов", "Тихонов", "Казаков",
            "Афанасьев", "Данилов", "Савельев", "Тимофеев", "Фомин", "Чернов", "Абрамов",
            "Мартынов", "Ефимов", "Федотов", "Щербаков", "Назаров", "Калинин", "Исаев",
            "Чернышёв", "Быков", "Маслов", "Родионов", "Коновалов", "Лазарев", "Воронин",
            "Климов", "Филатов", "Пономарёв", "Голубев", "Кудрявцев", "Прохоров", "Наумов",
            "Потапов", "Журавлёв", "Овчинников", "Трофимов", "Леонов", "Соболев", "Ермаков",
            "Колесников", "Гончаров", "Емельянов", "Никифоров", "Грачёв", "Котов", "Гришин",
            "Ефремов", "Архипов", "Громов", "Кириллов", "Малышев", "Панов", "Моисеев", "Румянцев"]
_TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                     ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n",
                      "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y",
                      "", "e", "yu", "ya"], strict=True))

# Max's FailedUserDetails codes (translated on display, see migrator.groups.attention)
ADD_ERRORS = ["add.participant.privacy", "add.participant.not.found", "max.soft_failure"]


def translit(text: str) -> str:
    return "".join(_TRANSLIT.get(ch, ch) for ch in text.lower())


def person(rng: random.Random) -> tuple[str, str, str]:
    """(full name, transliterated surname, transliterated initials), genders matching."""
    surname = rng.choice(SURNAMES)
    male, female = rng.choice(PATRONYMICS)
    if rng.random() < 0.55:
        first, patronymic, surname = rng.choice(FEMALE), female, surname + "а"
    else:
        first, patronymic = rng.choice(MALE), male
    initials = translit(first[0]) + translit(patronymic[0])
    return f"{surname} {first} {patronymic}", translit(surname), initials



# --- region scale -----------------------------------------------------------------------------

TOWNS = ["Лесногорский", "Реченский", "Каменский", "Озёрный", "Заречный", "Северный", "Горный",
         "Берёзовский", "Сосновский", "Кедровый", "Светлый", "Таёжный", "Полевской", "Липовский",
         "Ключевской", "Медногорский", "Хвойный", "Солнечный", "Уральский", "Боровской"]
LEAF_KINDS = [("МБОУ «Средняя школа № {n}»", "school"), ("МБДОУ «Детский сад № {n}»", "kinder"),
              ("МУП «Водоканал-{n}»", "vodokanal"), ("Филиал МФЦ № {n}", "mfc"),
              ("ГБУЗ «Поликлиника № {n}»", "clinic"), ("МКУ «Служба ЖКХ № {n}»", "zkh"),
              ("МБУК «Дом культуры № {n}»", "culture")]
GROUP_NAMES = ["Оперативные вопросы", "Руководство", "Дежурная смена", "Педсовет",
               "Аварийная служба", "Бухгалтерия", "Совещания", "Объявления для сотрудников",
               "Отдел кадров", "Штаб"]
AUDIT_ACTIONS = [("employee.invite", "employee"), ("step.succeeded", "step"),
                 ("member.added", "employee"), ("mail.sent", "outbox"), ("max.call", "chat"),
                 ("group.link", "group"), ("auth.login", "user"), ("step.failed", "step")]

