"""List filters keep the chosen value selected after the page reloads."""


def test_filters_keep_their_choice(client, make_user, login):
    login(client, make_user("admin"))
    html = client.get("/groups/?platform=telegram&attention=1&mapping=linked").get_data(
        as_text=True)
    assert '<option value="telegram" selected>' in html and '<option value="1" selected>' in html
    assert '<option value="linked" selected>' in html
    html = client.get("/max/chats?status=removed").get_data(as_text=True)
    assert '<option value="removed" selected>' in html
    html = client.get("/employees/?linked=no").get_data(as_text=True)
    assert '<option value="no" selected>' in html
