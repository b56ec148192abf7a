"""Empty states of the dashboard say what to do next."""


def test_coordinator_of_an_empty_organisation_is_told_to_import_people(client, make_org,
                                                                      make_user, login):
    org = make_org(code="NEW", name="Новое ведомство")
    login(client, make_user("coordinator", orgs=[org]))
    html = client.get("/").get_data(as_text=True)
    assert "Здесь пока нет сотрудников и групп" in html
    assert "Организаций пока нет" not in html


def test_admin_of_an_empty_region_is_told_to_import_the_tree(client, make_user, login):
    login(client, make_user("admin"))
    assert "Организаций пока нет" in client.get("/").get_data(as_text=True)
