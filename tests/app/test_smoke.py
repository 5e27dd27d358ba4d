from fastapi.testclient import TestClient


def test_healthz_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}
