import weir_kit as weir
from weir_kit import Fail, Record

from app import Redact


def body(outcome):
    assert isinstance(outcome, weir.Emit), outcome
    assert len(outcome.documents) == 1
    return outcome.documents[0].json()


def test_emails_and_phones_are_replaced_and_counted():
    [out] = weir.run(Redact, [{"text": "mail ann.lee@example.co.uk or call +44 20 7946 0958", "id": 7}])
    assert body(out) == {
        "text": "mail [EMAIL] or call [PHONE]",
        "id": 7,
        "redacted": {"emails": 1, "phones": 1, "keywords": 0},
    }


def test_keywords_are_whole_words_case_insensitive():
    [out] = weir.run(
        Redact,
        [{"text": "Project Falcon, falconry and FALCON."}],
        {"keywords": "falcon, secret"},
    )
    assert body(out)["text"] == "Project [REDACTED], falconry and [REDACTED]."
    assert body(out)["redacted"]["keywords"] == 2


def test_only_configured_fields_and_switches():
    [out] = weir.run(
        Redact,
        [{"title": "a@b.io", "text": "a@b.io 555-123-4567"}],
        {"fields": "text", "phones": "false"},
    )
    assert body(out) == {
        "title": "a@b.io",
        "text": "[EMAIL] 555-123-4567",
        "redacted": {"emails": 1, "phones": 0, "keywords": 0},
    }


def test_non_string_fields_are_left_alone():
    [out] = weir.run(Redact, [{"text": 42}])
    assert body(out) == {"text": 42, "redacted": {"emails": 0, "phones": 0, "keywords": 0}}


def test_invalid_json_fails_only_that_record_with_the_reason():
    outs = weir.run(Redact, [b'{"text": "ok"}', b'{"text": ', b"[1]"])
    assert isinstance(outs[0], weir.Emit)
    assert outs[1] == Fail("invalid JSON at byte 9: Expecting value")
    assert outs[2] == Fail("expected a JSON object, found an array")


def test_a_bad_setting_rejects_the_module_naming_the_key():
    try:
        weir.run(Redact, [], {"emails": "maybe"})
    except weir.Error as e:
        assert str(e) == 'config key "emails": cannot parse "maybe" as true/false'
    else:
        raise AssertionError("init accepted emails=maybe")


def test_the_class_works_without_the_runner():
    redact = Redact(weir.Config(fields="body"))
    out = redact.process(Record.from_value({"body": "x@y.org"}))
    assert body(out)["body"] == "[EMAIL]"
