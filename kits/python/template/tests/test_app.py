import weir_kit as weir

from app import process


def test_adds_the_topic():
    [out] = weir.run(process, [weir.Record.from_value({"a": 1}, topic="news")])
    assert out.documents[0].json() == {"a": 1, "source": "news"}


def test_invalid_json_fails_the_record():
    [out] = weir.run(process, [b"{"])
    assert isinstance(out, weir.Fail) and out.reason.startswith("invalid JSON at byte 1")
