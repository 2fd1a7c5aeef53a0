"""What the pages show of a running job's progress (``bananas.dashboard.data``)."""

from __future__ import annotations

from bananas.dashboard.data import PREVIEW_CHARS, progress_fields


def test_progress_text_and_message() -> None:
    assert progress_fields(None, "ignored") == {
        "progress": None,
        "progress_text": "-",
        "progress_message": "",
    }
    assert progress_fields(40.0, "frame 2 of 3")["progress_text"] == "40%"
    assert progress_fields(0.0, None) == {
        "progress": 0.0,
        "progress_text": "0%",
        "progress_message": "",
    }
    assert progress_fields(100.0, None)["progress_text"] == "100%"
    assert progress_fields(33.333, None)["progress_text"] == "33.3%"
    assert progress_fields(50, {"files": 3, "of": 4})["progress_message"] == '{"files":3,"of":4}'
    long = progress_fields(1, "x" * 500)["progress_message"]
    assert len(long) == PREVIEW_CHARS and long.endswith("…")
