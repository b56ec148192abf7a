"""Keyboard-only use and a tablet-width viewport."""

from playwright.sync_api import expect


def test_sign_in_and_reach_the_import_with_the_keyboard_only(
        page, live_server, make_org, make_user, user_password):
    org = make_org(code="EDU", name="Министерство образования")
    user = make_user("coordinator", orgs=[org])
    page.goto(live_server.url + "/login")
    email = page.get_by_label("Электронная почта")
    expect(email).to_be_focused()  # autofocus: typing starts at once
    page.keyboard.type(user.email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Пароль")).to_be_focused()
    page.keyboard.type(user_password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Сводка: Министерство образования")).to_be_visible()

    # The first Tab lands on the skip link, which moves focus past the navigation.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="К содержимому")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()  # shown when focused
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")

    page.get_by_role("navigation", name="Основная навигация").get_by_role(
        "link", name="Импорт").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Импорт", exact=True)).to_be_visible()


PAGES = ["/", "/attention", "/groups/", "/max/chats", "/waves/", "/waves/new", "/imports/",
         "/progress/report"]


def test_main_pages_fit_a_tablet_width(page, live_server, signed_in, make_org, make_user,
                                       make_group):
    region = make_org(code="EDU", name="Министерство образования и науки региона")
    for n in range(3):
        school = make_org(code=f"SCH{n}", name=f"Муниципальная общеобразовательная школа №{n}",
                          parent=region)
        make_group(school, key=f"sch{n}-teachers", name=f"Учителя школы №{n}")
    page.set_viewport_size({"width": 768, "height": 1024})
    signed_in(make_user("coordinator", orgs=[region]))
    too_wide = {}
    for path in PAGES:
        page.goto(live_server.url + path)
        expect(page.get_by_role("main")).to_be_visible()
        # no sideways scrolling of the whole page (wide tables scroll inside their wrapper)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if overflow > 0:
            too_wide[path] = overflow
    assert too_wide == {}, f"pages wider than a 768px viewport (px): {too_wide}"
