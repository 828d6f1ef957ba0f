def test_scratch(client, auth, factories):
    a = factories.make_user("requester", email="a@example.com")
    b = factories.make_user("agent", email="b@example.com")
    r = auth.login(a)
    print(r.status_code, r.headers.get("Location"))
    r = client.get("/requests")
    print(a.name, a.name.encode() in r.data)
    c2 = client.application.test_client()
    from tests.conftest import AuthActions
    AuthActions(c2).login(b)
    r = c2.get("/requests")
    print("c2 sees b?", b.name.encode() in r.data, "a?", a.name.encode() in r.data)
    r = client.get("/requests")
    print("c1 sees b?", b.name.encode() in r.data, "a?", a.name.encode() in r.data)
