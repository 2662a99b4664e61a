import pytest

from oneiric.testing import free_port, in_ci, poll_until, require_live

pytest_plugins = ["pytester"]


def test_poll_until_returns_first_truthy_value() -> None:
    calls = iter([0, 0, 7])
    assert poll_until(lambda: next(calls), interval=0) == 7


def test_poll_until_fails_after_timeout() -> None:
    with pytest.raises(pytest.fail.Exception, match="never not reached"):
        poll_until(lambda: False, timeout=0.05, interval=0.01, message="never")


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_require_live_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert not in_ci()
    with pytest.raises(pytest.skip.Exception):
        require_live(False, "a server")


def test_require_live_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_live(False, "a server")
    require_live(True, "a server")  # available: no-op


def test_skipped_live_test_fails_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.live
        def test_needs_server():
            pytest.skip("no server")

        def test_plain_skip():
            pytest.skip("fine")
        """
    )
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, skipped=1)
    monkeypatch.setenv("CI", "false")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2)
