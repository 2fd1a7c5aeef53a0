"""Helpers every suite shares: real servers (``servers``), real worker processes
(``processes``), an injectable clock (``clock``), free ports (``ports``) and polling
with a deadline (``waiting``: one sync and one async ``eventually``)."""
