from pathlib import Path

import pytest

from drillrunner.core.paths import state_dir


def test_state_folder_leaves_a_private_project_folder(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL runs as its own user: a project under a 0700 folder keeps its state in
    /var/tmp instead of a `.drill/` it could not reach."""
    monkeypatch.delenv("DRILL_STATE_DIR", raising=False)
    private = tmp_path / "private"
    (private / "p" / "scenarios").mkdir(parents=True)
    private.chmod(0o700)
    monkeypatch.chdir(private / "p")
    assert str(state_dir()).startswith("/var/tmp/drillrunner-p-")


def test_state_folder_in_a_reachable_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRILL_STATE_DIR", raising=False)
    root = Path(__file__).resolve().parents[2]  # /work/main here: every folder is o+x
    monkeypatch.chdir(root)
    reachable = all(p.stat().st_mode & 0o001 for p in (root, *root.parents))
    assert (state_dir() == root / ".drill") is reachable
