"""drill audit reads untrusted manifests: alias bombs, oversized files, too many documents and
too deep nesting are refused at once (exit 2, one `file:line: reason` line, no traceback), and
what the API server would refuse (duplicate keys, non-strings where it needs strings) is
refused with its line rather than read one way when the cluster reads it another."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from drillrunner.audit import AuditInputError, load_paths
from drillrunner.audit import loader as audit_loader
from drillrunner.cli import main

MAX_FILE_BYTES, MAX_DOCUMENTS, MAX_DEPTH = 8 * 1024 * 1024, 10_000, 200  # as the README says
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ns}\n"
LAUGHS = "".join(f"  {b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
                 for a, b in zip("abcdefgh", "bcdefghi", strict=True))
BOMBS = {
    # a "billion laughs": 9^9 strings from a few hundred bytes
    "sequences": CONFIGMAP + "data:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                 + LAUGHS,
    # the same through merge keys
    "merge keys": CONFIGMAP + "x:\n  a: &a {k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6}\n" + "".join(
        f"  {b}: &{b} {{<<: [{', '.join([f'*{a}'] * 8)}], z: 1}}\n"
        for a, b in zip("abcdefg", "bcdefgh", strict=True)),
    # in a config file written into a ConfigMap (the rules parse it)
    "in a ConfigMap value": CONFIGMAP + "data:\n  settings.yaml: |\n    a: &a [lol, lol, lol, "
                            "lol, lol, lol, lol, lol, lol]\n" + textwrap.indent(LAUGHS, "  "),
    "in an env value": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
                       "    - name: app\n      env:\n        - name: SETTINGS\n          value: |\n"
                       "            a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                       + textwrap.indent(LAUGHS, " " * 10),
}


def refused(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Runs `drill audit PATH`: exit 2 in well under a second, one line on stderr, nothing on
    stdout; returns that line."""
    t0 = time.perf_counter()
    code = main(["audit", str(path)])
    elapsed = time.perf_counter() - t0
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"{path}:"), err
    assert elapsed < 1.0, elapsed
    return err.strip()


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_alias_bombs_are_refused_at_once(case: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BOMBS[case])
    assert path.stat().st_size < 800  # a few hundred bytes
    with pytest.raises(AuditInputError, match="alias bomb"):  # fails fast where unbounded
        load_paths([str(path)])
    line = refused(path, capsys)
    assert line.startswith(f"{path}:") and line.split(":")[1].isdigit(), line


def test_a_cycle_of_aliases_is_refused(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CONFIGMAP + "data: &d\n  x: *d\n")
    assert refused(path, capsys) == f"{path}:4: an alias inside the node it refers to (a cycle)"


def test_anchors_and_merge_keys_within_bounds_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIGMAP + textwrap.dedent("""\
        x:
          base: &base {a: 1, b: 2}
          nested:
            mid: &mid {<<: *base, b: 3}
        top: {<<: *mid, c: 4}
        first-wins: {<<: [*mid, *base], a: 9}
        data: {k: v}
        """))
    body = load_paths([str(path)])[0].body
    # the mapping's own keys win over merged ones, earlier merged mappings over later ones
    assert body["top"] == {"a": 1, "b": 3, "c": 4}
    assert body["first-wins"] == {"a": 9, "b": 3}


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    path = write(tmp_path, CONFIGMAP + "data:\n  big: " + "x" * MAX_FILE_BYTES)
    with pytest.raises(AuditInputError, match="8 MiB"):
        load_paths([str(path)])
    assert refused(path, capsys) == f"{path}: larger than 8 MiB, the limit per file"


def test_the_total_input_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    one = write(tmp_path, CONFIGMAP, "a.yaml")
    write(tmp_path, CONFIGMAP.replace("name: c", "name: d"), "b.yaml")
    monkeypatch.setattr(audit_loader, "MAX_TOTAL_BYTES", int(one.stat().st_size * 1.5))
    with pytest.raises(AuditInputError, match=r"b\.yaml: the input exceeds .* in total"):
        load_paths([str(tmp_path)])


@pytest.mark.parametrize("document, line", [
    ("{}\n", 3 + 2 * MAX_DOCUMENTS),  # counted as parsed: the 10001st document's line
    (CONFIGMAP, 4 * MAX_DOCUMENTS + 4),  # counted before parsing: the 10001st `---`
])
def test_too_many_documents_are_refused(document: str, line: int, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CONFIGMAP + ("---\n" + document) * MAX_DOCUMENTS
                 + "---\n" * (document == CONFIGMAP))
    with pytest.raises(AuditInputError, match="documents"):
        load_paths([str(path)])
    assert refused(path, capsys) == (f"{path}:{line}: more than {MAX_DOCUMENTS} documents "
                                     "in one file")


@pytest.mark.parametrize("depth", [MAX_DEPTH, 900])  # libyaml stops at 1000
def test_too_deep_nesting_is_refused(depth: int, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CONFIGMAP + "x: " + "[" * depth + "]" * depth + "\n")
    assert refused(path, capsys) == f"{path}:4: nested deeper than 200 levels"


def test_depth_reached_through_aliases_is_refused(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    half = MAX_DEPTH // 2 + 1
    path = write(tmp_path, CONFIGMAP + "x:\n  a: &a " + "[" * half + "]" * half
                 + "\n  b: " + "[" * half + "*a" + "]" * half + "\n")
    assert refused(path, capsys).endswith("nested deeper than 200 levels (through an alias)")


def test_nesting_within_bounds_is_read(tmp_path: Path) -> None:
    depth = MAX_DEPTH - 1  # the document's mapping is the first level
    path = write(tmp_path, CONFIGMAP + "x: " + "[" * depth + "]" * depth + "\n")
    assert len(load_paths([str(path)])) == 1


DUPLICATES = {
    "a top-level field": ("spec: {}\nspec: {}\n", 7, "'spec' (first at line 6)"),
    "a container field": ("""\
        spec:
          containers:
            - name: app
              image: app:1
              image: app:2
        """, 10, "'image' (first at line 9)"),
    "a label": ("""\
        spec:
          template:
            metadata:
              labels:
                app: web
                app: api
        """, 11, "'app' (first at line 10)"),
}


@pytest.mark.parametrize("case", sorted(DUPLICATES))
def test_duplicate_keys_are_refused_with_both_lines(case: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    text, line, what = DUPLICATES[case]
    head = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: ns}\n"
    path = write(tmp_path, "# a comment and a blank line first\n\n" + head
                 + textwrap.dedent(text))
    assert refused(path, capsys) == (f"{path}:{line}: duplicate key {what}: the API server "
                                     "refuses it")


NOT_STRINGS = {
    # case: (YAML, line, what the message says)
    "a label key read as a boolean": ("""\
        metadata:
          name: c
          labels: {on: x}
        """, 3, "metadata.labels key True is a boolean"),
    "a label value read as a boolean": ("""\
        metadata:
          name: c
          labels:
            enabled: yes
        """, 4, "metadata.labels.enabled is a boolean"),
    "an annotation value read as a number": ("""\
        metadata:
          name: c
          annotations: {prometheus.io/port: 9090}
        """, 3, "metadata.annotations.prometheus.io/port is a number"),
    "a namespace read as a number": ("metadata:\n  name: c\n  namespace: 2024\n", 3,
                                     "metadata.namespace is a number"),
    "a ConfigMap value read as a number": ("metadata: {name: c}\ndata:\n  port: 8080\n", 3,
                                           "data.port is a number"),
    "a pod template label": ("""\
        metadata: {name: c}
        spec:
          template:
            metadata: {labels: {canary: true}}
        """, 4, "spec.template.metadata.labels.canary is a boolean"),
    "an env value read as a number": ("""\
        metadata: {name: c}
        spec:
          containers:
            - name: app
              env:
                - {name: PORT, value: 8080}
        """, 6, "env PORT value is a number"),
}


@pytest.mark.parametrize("case", sorted(NOT_STRINGS))
def test_non_strings_the_api_server_refuses_are_named(case: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    text, line, what = NOT_STRINGS[case]
    kind = "Pod" if "env" in case or "template" in case else "ConfigMap"
    path = write(tmp_path, f"apiVersion: v1\nkind: {kind}\n" + textwrap.dedent(text))
    message = refused(path, capsys)
    assert message.startswith(f"{path}:{line + 2}: {kind}/"), message
    assert f"/c: {what}" in message, message
    assert message.endswith("not a string: quote it"), message


def test_quoted_values_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: c
          labels: {"on": "yes", enabled: "true"}
          annotations: {prometheus.io/port: "9090"}
        data: {port: "8080", empty: null}
        """))
    (res,) = load_paths([str(path)])
    assert res.body["metadata"]["labels"] == {"on": "yes", "enabled": "true"}
    assert res.line == 1 and res.file == str(path)


def test_lines_of_a_config_written_into_a_configmap(tmp_path: Path) -> None:
    from drillrunner.audit.k8s import data_line, leaves, parsed

    path = write(tmp_path, CONFIGMAP + "data:\n  app.yaml: |\n    a: 1\n    b:\n      c: 2\n"
                 "  inline: 'x: 1'\n")
    (res,) = load_paths([str(path)])
    doc = parsed(res.body["data"]["app.yaml"])
    assert [(p, line) for p, _, _, line in leaves(doc)] == [("a", 1), ("b.c", 3)]
    assert [data_line(res, "app.yaml", n) for n in (None, 1, 3)] == [5, 6, 8]
    assert data_line(res, "inline", 1) == 9  # not a literal block: the key's line


def test_rules_take_linear_time(tmp_path: Path) -> None:
    """A long line in a value, or thousands of ConfigMaps, are audited at once (not by
    regexes that rescan the line from every position, or a search per ConfigMap)."""
    from drillrunner.audit import evaluate

    long = write(tmp_path, CONFIGMAP + "data:\n  a: " + "x" * 20_000 + "\n  b: '"
                 + "{{" * 10_000 + "'\n  password: '" + "${" * 10_000 + "'\n", "long.yaml")
    many = write(tmp_path, "---\n".join(CONFIGMAP.replace("name: c", f"name: c{i}")
                                        for i in range(4000)), "many.yaml")
    for path in (long, many):
        resources = load_paths([str(path)])
        t0 = time.perf_counter()
        evaluate(resources)
        assert time.perf_counter() - t0 < 1.0, path.name
