"""The kit natively, including its component glue over stand-in bindings."""

import sys
import types as pytypes
from dataclasses import dataclass
from typing import List, Optional

import pytest

import weir_kit as weir
from weir_kit import Config, Drop, Emit, Fail, Record, _state


def test_config_getters_and_errors_name_the_key():
    config = Config([("n", "3"), ("n", "4"), ("on", "Yes"), ("xs", " a, ,b ")])
    assert config.get("n") == "4"
    assert config.get("missing", "d") == "d"
    assert config.get_int("n", 0) == 4
    assert config.get_bool("on", False) is True
    assert config.get_list("xs") == ["a", "b"]
    assert config.get_list("none", ["z"]) == ["z"]
    with pytest.raises(weir.Error, match='missing required config key "k"'):
        config.require("k")
    with pytest.raises(weir.Error, match='config key "on": cannot parse "Yes" as an integer'):
        config.get_int("on", 0)


def test_record_json_errors_say_where_and_what():
    assert Record.from_value('{"a": "é"}').json() == {"a": "é"}
    with pytest.raises(weir.Error, match=r"^invalid JSON at byte 9: "):
        Record.from_value('{"é": 1,}').json()
    with pytest.raises(weir.Error, match="^expected a JSON object, found a string$"):
        Record.from_value('"s"').json()
    with pytest.raises(weir.Error, match="^value is not UTF-8"):
        Record.from_value(b"\xff").json()


def test_record_helpers():
    r = Record.from_value(b"{}", topic="t", partition=2, offset=9, headers=[weir.Header("h", b"v")])
    assert r.coordinates() == "t/2/9"
    assert r.header("h") == b"v" and r.header("x") is None


def test_emit_serialises_compactly_and_keeps_non_ascii():
    out = weir.emit({"a": "é", "b": [1]}, {"c": None}, index="idx")
    assert [d.body for d in out.documents] == ['{"a":"é","b":[1]}'.encode(), b'{"c":null}']
    assert {d.index for d in out.documents} == {"idx"}


def test_functions_with_and_without_config_and_dict_shorthand():
    def with_config(record, config):
        return {"v": config.get("v")}

    def without(record):
        return weir.drop()

    [out] = weir.run(with_config, [{}], {"v": "x"})
    assert out.documents[0].json() == {"v": "x"}
    assert weir.run(without, [{}]) == [Drop()]


def test_an_exception_fails_only_its_record_with_type_and_message():
    def explode_on_b(record):
        doc = record.json()
        return weir.emit(doc) if doc["k"] != "b" else {}["missing"]

    outs = weir.run(explode_on_b, [{"k": "a"}, {"k": "b"}, {"k": "c"}])
    assert isinstance(outs[0], Emit) and isinstance(outs[2], Emit)
    assert outs[1] == Fail("KeyError: 'missing'")


def test_a_wrong_return_type_is_a_clear_failure():
    [out] = weir.run(lambda record: 42, [{}])
    assert out == Fail(
        "TypeError: process returned int; return weir.emit(...), weir.drop(), weir.fail(reason) or a dict"
    )


def test_process_batch_length_is_checked():
    class Short:
        def __init__(self, config):
            pass

        def process_batch(self, records):
            return [weir.drop()]

    outs = weir.run(Short, [{}, {}])
    assert outs == [Fail("process_batch returned 1 outcomes for 2 records")] * 2


# --- the component glue, over stand-ins for componentize-py's bindings ---


@dataclass
class _Header:
    key: str
    value: Optional[bytes]


@dataclass
class _Record:
    topic: str
    partition: int
    offset: int
    timestamp_ms: Optional[int]
    key: Optional[bytes]
    headers: List[_Header]
    value: bytes


@pytest.fixture
def bindings(monkeypatch):
    """Fake ``wit_world.imports.types`` and ``componentize_py_types``."""
    types = pytypes.ModuleType("wit_world.imports.types")

    @dataclass
    class Document:
        body: bytes
        index: Optional[str]
        id: Optional[str]

    @dataclass
    class Outcome_Emit:
        value: list

    @dataclass
    class Outcome_Drop:
        pass

    @dataclass
    class Outcome_Fail:
        value: str

    @dataclass
    class ModuleInfo:
        name: str
        version: str

    for cls in (Document, Outcome_Emit, Outcome_Drop, Outcome_Fail, ModuleInfo):
        setattr(types, cls.__name__, cls)
    imports = pytypes.ModuleType("wit_world.imports")
    imports.types = types
    world = pytypes.ModuleType("wit_world")
    world.imports = imports
    cpt = pytypes.ModuleType("componentize_py_types")

    class Err(Exception):
        def __init__(self, value):
            super().__init__(value)
            self.value = value

    cpt.Err = Err
    for name, mod in [
        ("wit_world", world),
        ("wit_world.imports", imports),
        ("wit_world.imports.types", types),
        ("componentize_py_types", cpt),
    ]:
        monkeypatch.setitem(sys.modules, name, mod)
    saved = (_state.registered, _state.instance, _state.init_error)
    yield types, Err
    _state.registered, _state.instance, _state.init_error = saved


def _record(value: bytes, offset: int = 0) -> _Record:
    return _Record("t", 0, offset, None, None, [_Header("h", None)], value)


def test_init_state_survives_a_fresh_export_object_per_call(bindings):
    types, _ = bindings

    @weir.module(name="stateful", version="1.2.3")
    class Stateful:
        def __init__(self, config):
            self.suffix = config.require("suffix")

        def process(self, record):
            doc = record.json()
            doc["s"] = self.suffix
            return doc

    # componentize-py creates a new Processor for every export call.
    assert weir.Processor().describe() == types.ModuleInfo("stateful", "1.2.3")
    weir.Processor().init([("suffix", "!")])
    outs = weir.Processor().process([_record(b'{"a":1}'), _record(b"nope", 1)])
    assert outs[0] == types.Outcome_Emit([types.Document(b'{"a":1,"s":"!"}', None, None)])
    assert isinstance(outs[1], types.Outcome_Fail)
    assert outs[1].value.startswith("invalid JSON at byte 0: ")


def test_init_error_is_the_export_error_and_process_never_raises(bindings):
    types, Err = bindings

    @weir.module(name="broken", version="0")
    class Broken:
        def __init__(self, config):
            config.require("url")

        def process(self, record):
            return weir.drop()

    with pytest.raises(Err) as raised:
        weir.Processor().init([])
    assert raised.value.value == 'missing required config key "url"'
    outs = weir.Processor().process([_record(b"{}")])
    assert outs == [types.Outcome_Fail('missing required config key "url"')]


def test_a_batch_hook_that_raises_fails_every_record_of_the_batch(bindings):
    types, _ = bindings

    @weir.module(name="batchy", version="0")
    class Batchy:
        def __init__(self, config):
            pass

        def process_batch(self, records):
            raise RuntimeError("backend down")

    weir.Processor().init([])
    outs = weir.Processor().process([_record(b"{}"), _record(b"{}", 1)])
    assert outs == [types.Outcome_Fail("RuntimeError: backend down")] * 2
