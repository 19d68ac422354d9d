#!/usr/bin/env python3
"""Export the hatesonar 0.1.0 model to JSON and record reference probabilities.

Run once from the repository root (inside a venv made from requirements.txt,
with ``pip install --no-deps hatesonar==0.1.0``):

    python classifier/scripts/export_hatesonar.py

What the wheel ships: hatesonar/model/model.onnx, produced by skl2onnx 1.19.1
from a scikit-learn Pipeline(TfidfVectorizer(), LogisticRegression(l1, saga))
trained on the Davidson et al. (2017) tweets. The graph is

    Reshape -> StringNormalizer(LOWER) -> Tokenizer(tokenexp=[a-zA-Z0-9_]+, mincharnum=1)
    -> TfIdfVectorizer(mode=TF, 1-grams) -> Mul(idf) -> Normalizer(L2)
    -> LinearClassifier(multinomial, post_transform=SOFTMAX) -> Normalizer(L1) -> ZipMap

Note the ONNX tokenizer is ASCII-only and keeps 1-character tokens, unlike
scikit-learn's default ``(?u)\\b\\w\\w+\\b``; we reproduce what the package runs.
This script asserts that structure, then writes classifier/data/hatesonar/model.json
(vocabulary, idf, the non-zero coefficients, intercepts, preprocessing settings)
and copies the package licence next to it.

Reference run: the package's own ``Sonar.ping`` (onnxruntime, float32). On Debian
onnxruntime cannot build the StringNormalizer's default ``en_US.UTF-8`` locale
("Failed to construct locale"), and LC_ALL/LANG do not help because the locale
is an operator attribute; so the reference run uses a temporary copy of the
model whose StringNormalizer has ``locale="C.UTF-8"``. Output:
classifier/data/reference/hatesonar_reference.jsonl.
"""

import hashlib
import importlib.metadata as md
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import helper, numpy_helper

import hatesonar
from hatesonar import Sonar

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
EXPECTED_VERSION = "0.1.0"
CLASSES = ["hate", "offensive", "neither"]
PACKAGE_CLASSES = {"hate_speech": "hate", "offensive_language": "offensive", "neither": "neither"}
OPS = ["Reshape", "StringNormalizer", "Tokenizer", "Flatten", "TfIdfVectorizer", "Mul",
       "Normalizer", "LinearClassifier", "Cast", "Normalizer", "ZipMap"]

# Cases that a one-sentence-per-line file cannot hold.
EDGE_CASES = ["", "   ", "bitch\tplease", "fuck\nthis", "\u0130diot", "\u212aill them"]


def attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def f32_json(values):
    """Shortest decimal strings that read back (as f64, then cast) to the same f32."""
    out = []
    for v in np.asarray(values, dtype=np.float32):
        as_float = float(str(v))
        assert np.float32(as_float) == v, (v, as_float)
        out.append(as_float)
    return out


def export(model_path):
    model = onnx.load(str(model_path))
    nodes = list(model.graph.node)
    assert [n.op_type for n in nodes] == OPS, [n.op_type for n in nodes]
    norm, tok, tfidf, l2, linear, l1 = (attrs(nodes[i]) for i in (1, 2, 4, 6, 7, 9))
    assert norm["case_change_action"] == b"LOWER" and "stopwords" not in norm
    assert tok["tokenexp"] == b"[a-zA-Z0-9_]+" and tok["mincharnum"] == 1 and tok["mark"] == 0
    assert tfidf["mode"] == b"TF" and tfidf["min_gram_length"] == 1 and tfidf["max_gram_length"] == 1
    assert tfidf["max_skip_count"] == 0
    assert l2["norm"] == b"L2" and l1["norm"] == b"L1"
    assert linear["post_transform"] == b"SOFTMAX" and linear["multi_class"] == 1
    assert list(linear["classlabels_ints"]) == [0, 1, 2]

    vocabulary = [s.decode("utf-8") for s in tfidf["pool_strings"]]
    assert list(tfidf["ngram_indexes"]) == list(range(len(vocabulary)))
    assert vocabulary == sorted(vocabulary)
    idf = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "idfcst"))
    assert idf.shape == (len(vocabulary),)

    coef = np.asarray(linear["coefficients"], dtype=np.float32).reshape(len(CLASSES), -1)
    used = np.flatnonzero((coef != 0).any(axis=0))
    return {
        "format": "weir-linear-tfidf/1",
        "source": {
            "package": f"hatesonar=={EXPECTED_VERSION}",
            "file": "hatesonar/model/model.onnx",
            "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
            "producer": f"{model.producer_name} {model.producer_version}",
            "training_data": "Davidson et al. 2017, Automated Hate Speech Detection and the Problem of Offensive Language",
            "license": "MIT (see LICENSE next to this file)",
        },
        "classes": CLASSES,
        "preprocessing": {
            "lowercase": True,
            "lowercase_note": "per character, simple case mapping (StringNormalizer towlower)",
            "token_pattern": "[a-zA-Z0-9_]+",
            "token_min_chars": 1,
            "ngram_range": [1, 1],
            "stop_words": None,
            "tf": "raw counts",
            "sublinear_tf": False,
            "use_idf": True,
            "norm": "l2",
            "arithmetic": "float32",
        },
        "classifier": {
            "kind": "multinomial logistic regression",
            "post_transform": "softmax",
            "renormalize": "l1",
        },
        "vocabulary": vocabulary,
        "idf": f32_json(idf),
        "coefficients": {
            "feature_index": [int(i) for i in used],
            "weights": [f32_json(coef[:, i]) for i in used],
        },
        "intercepts": f32_json(linear["intercepts"]),
    }


def patched_model(model_path, directory):
    model = onnx.load(str(model_path))
    for node in model.graph.node:
        if node.op_type == "StringNormalizer":
            node.attribute.append(helper.make_attribute("locale", "C.UTF-8"))
    out = Path(directory) / "model-c-utf8.onnx"
    onnx.save(model, str(out))
    return out


def load_sentences():
    texts = []
    for path in sorted((DATA / "reference").glob("sentences_*.txt")):
        texts.extend(line.rstrip("\n") for line in path.open(encoding="utf-8"))
    return texts + EDGE_CASES


def main():
    version = md.version("hatesonar")
    if version != EXPECTED_VERSION:
        sys.exit(f"need hatesonar=={EXPECTED_VERSION}, found {version}")
    model_path = Path(hatesonar.__file__).parent / "model" / "model.onnx"

    out_dir = DATA / "hatesonar"
    out_dir.mkdir(parents=True, exist_ok=True)
    exported = export(model_path)
    model_json = out_dir / "model.json"
    with model_json.open("w", encoding="utf-8") as f:
        json.dump(exported, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    dist = md.distribution("hatesonar")
    licence = next(f for f in dist.files if f.name.upper().startswith("LICENSE"))
    shutil.copyfile(dist.locate_file(licence), out_dir / "LICENSE")
    print(f"wrote {model_json.relative_to(ROOT.parent)}: {model_json.stat().st_size} bytes, "
          f"{len(exported['vocabulary'])} terms, "
          f"{len(exported['coefficients']['feature_index'])} with non-zero weights")

    texts = load_sentences()
    out = DATA / "reference" / "hatesonar_reference.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        sonar = Sonar(patched_model(model_path, tmp))
        with out.open("w", encoding="utf-8") as f:
            for text in texts:
                result = sonar.ping(text)
                scores = {PACKAGE_CLASSES[c["class_name"]]: float(c["confidence"]) for c in result["classes"]}
                record = {"text": text, "label": PACKAGE_CLASSES[result["top_class"]], "scores": scores}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(texts)} records to {out.relative_to(ROOT.parent)} "
          f"(onnxruntime {onnxruntime.__version__})")


if __name__ == "__main__":
    main()
