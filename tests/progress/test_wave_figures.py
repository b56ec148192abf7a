"""The wave list shows each wave's progress: groups switched, coverage, errors, overdue —
over the groups the reader may see."""

from __future__ import annotations

import re

from migrator.progress import service


def _row(html: str, name: str) -> list[str]:
    row = re.search(r"<tr[^>]*>\s*<td><a [^>]*>" + re.escape(name) + r"</a>(.*?)</tr>", html,
                    re.S).group(1)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row,
                                                                  re.S)]


def test_wave_rows_match_the_figures(tree, make_user):
    admin = make_user("admin")
    rows = service.wave_rows([tree.wave.id, tree.wave_b.id], admin, tree.now)
    w, b = rows[tree.wave.id], rows[tree.wave_b.id]
    assert (w.groups, w.switched, w.members_total, w.failed_steps, w.overdue_steps) == (
        1, 1, 2, 0, 0)
    assert (b.groups, b.switched, b.members_total, b.failed_steps, b.overdue_steps) == (
        1, 0, 3, 1, 1)
    assert w.coverage_pct == 0.0 and b.switched_pct == 0.0
    # A coordinator of A sees nothing of B's groups in the shared figures.
    coord = make_user("coordinator", orgs=[tree.a])
    mine = service.wave_rows([tree.wave.id, tree.wave_b.id], coord, tree.now)
    assert mine[tree.wave_b.id].groups == 0 and mine[tree.wave.id].groups == 1


def test_wave_list_page_shows_progress(tree, make_user, login, client):
    login(client, make_user("admin"))
    html = client.get("/waves/").get_data(as_text=True)
    cells = _row(html, "Волна Б")
    assert cells[-4:] == ["0 / 1", "0.0%", "1", "1"]
    assert "Переключено групп" in html and "<meter" in html


def test_wave_status_is_feminine_and_step_status_masculine(tree, make_user, login, client,
                                                           ctx):
    login(client, make_user("admin"))
    tree.wave.status = "planned"
    ctx.add(tree.wave)
    ctx.commit()
    html = client.get("/waves/").get_data(as_text=True)
    assert "запланирована" in html and "идёт" in html  # «волна» is feminine
    dash = client.get("/").get_data(as_text=True)
    assert "запланирована" in dash  # the open waves table
    assert ">запланирован<" in dash  # the steps table: «шаг» is masculine
