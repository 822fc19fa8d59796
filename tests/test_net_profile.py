"""[[links]] in profiles: strict errors with file, line and key; net fault targets."""

from __future__ import annotations

import pytest

from console.errors import ProfileError
from console.profile import load_profile, load_profile_text

BASE = """
[[links]]
name = "wan"
{link}

[[ssh]]
name = "pool"
count = 3
via = "{via}"
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(ProfileError) as exc:
        load_profile_text(text, path="p.toml")
    return [str(i) for i in exc.value.issues]


def test_via_names_an_existing_link() -> None:
    errors = _errors(BASE.format(link="", via="wna"))
    assert "p.toml:9: ssh[0].via: no [[links]] table is named 'wna' (did you mean 'wan'?)" in errors
    assert (
        "p.toml:2: links[0].upstream: no group goes through this link: give it an upstream"
        in errors
    )


def test_links_stay_on_loopback_and_have_no_count() -> None:
    errors = _errors(BASE.format(link='listen = "0.0.0.0:0"\ncount = 2', via="wan"))
    assert (
        "p.toml:4: links[0].listen: 0.0.0.0 is not loopback; links stay on this machine" in errors
    )
    assert "p.toml:5: links[0].count: a link has no count; use per_session = true" in errors
    (api,) = _errors(BASE.format(link='api = "10.0.0.1:8474"', via="wan"))
    assert "links[0].api: 10.0.0.1 is not loopback" in api


def test_net_faults_target_links_instances_and_sessions_behind_them() -> None:
    text = BASE.format(link="per_session = true", via="wan")
    for target in ("wan", "wan#2", "pool", "pool#1"):
        profile = load_profile_text(
            text + f'[[faults]]\naction = "net.down"\ntarget = "{target}"\n', path="p.toml"
        )
        assert profile.faults[0].target == target
    errors = _errors(text + '[[faults]]\naction = "net.down"\ntarget = "wan#3"\n')
    assert any("faults[0].target" in e for e in errors)
    errors = _errors(text + '[[faults]]\naction = "net.latency"\nparams = { latncy = "1s" }\n')
    assert any("did you mean 'latency'" in e for e in errors)


def test_the_wan_profile_loads() -> None:
    profile = load_profile("spike2-ssh-wan")
    assert [f.action for f in profile.faults] == [
        "net.latency",
        "ssh.drop",
        "net.bandwidth",
        "net.timeout",
    ]
    assert profile.faults[0].params == {"latency": 0.125, "jitter": 0.075, "name": "wan_latency"}


def test_https_cannot_go_through_a_link() -> None:
    text = '[[links]]\nname = "edge"\n\n[[http]]\nbase_url = "https://example.org"\nvia = "edge"\n'
    (error,) = _errors(text)
    assert (
        error
        == "p.toml:6: http[0].via: a link carries plain http:// only (TLS would name the proxy)"
    )


def test_a_printed_net_create_loads_as_a_fault() -> None:
    text = BASE.format(link="", via="wan") + (
        '[[faults]]\naction = "net.create"\ntarget = "cache"\n'
        'params = { listen = "127.0.0.1:0", upstream = "127.0.0.1:6379" }\n'
    )
    profile = load_profile_text(text, path="p.toml")
    assert profile.faults[0].target == "cache"
