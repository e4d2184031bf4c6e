"""params.yaml loading: safe, strict, and every complaint points at a line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusprov.errors import ParamsError
from corpusprov.params.load import load_params
from corpusprov.params.stages import merge_params

REPO_ROOT = Path(__file__).resolve().parent.parent


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return merge_params(load_params(path, "params.yaml", required=True))


def test_shipped_params_are_valid_and_match_the_defaults() -> None:
    params = merge_params(load_params(REPO_ROOT / "params.yaml", "params.yaml", required=True))
    from corpusprov.params.stages import MergeParams

    assert params.required_keys == MergeParams().required_keys
    assert params.dedup_key == ("src_sha256", "encoder", "preset", "crf")
    assert params.keep == "first"
    assert params.non_finite == "keep"


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ("merge:\n  dedup:\n    keep: newest\n", "merge.dedup.keep: must be one of first, last", 3, 5),
        ("merge:\n  non_finte: keep\n", "merge.non_finte: unknown key", 2, 3),
        ("merge:\n  required_keys: [a, b]\n  dedup:\n    key: [a, c]\n", "'c' is not one of merge.required_keys", 4, 5),
        ("merge:\n  required_keys: [a, a]\n", "names 'a' twice", 2, 3),
        ("merge:\n  dedup:\n    key: []\n", "must name at least one field", 3, 5),
        ("merge:\n  required_keys: [a, b\n", "malformed YAML", 3, 1),
        ("merge:\n  keep: !!python/object/apply:os.system [echo hi]\n", "YAML tag", 2, 3),
        ("merge:\n  on_invalid_row: !custom fail\n", "YAML tag", 2, 3),
        ("merge: [1, 2]\n", "`merge` must be a mapping", 1, 1),
        ("merge:\n  a: 1\n  a: 2\n", "malformed YAML", 3, 3),
        ("merge:\n  jsonl:\n    max_line_bytes: 0\n", "must be at least 1", 3, 5),
        ("merge:\n  dedup:\n    keep:\n", "has no value", 3, 5),
    ],
)
def test_bad_params_name_line_and_column(tmp_path: Path, text: str, message: str, line: int, column: int) -> None:
    with pytest.raises(ParamsError) as caught:
        _load(tmp_path, text)
    error = caught.value
    assert message in error.message
    assert (error.path, error.line, error.column) == ("params.yaml", line, column)
    assert str(error).startswith(f"params.yaml:{line}:{column}: ")


def test_yaml_null_is_the_null_policy(tmp_path: Path) -> None:
    params = _load(tmp_path, "merge:\n  non_finite: null\n")
    assert params.non_finite == "null"  # type: ignore[attr-defined]


def test_missing_optional_params_file_means_defaults(tmp_path: Path) -> None:
    loaded = load_params(tmp_path / "nope.yaml", "nope.yaml", required=False)
    assert loaded.display is None and loaded.digest is None
    with pytest.raises(ParamsError, match="does not exist"):
        load_params(tmp_path / "nope.yaml", "nope.yaml", required=True)
