"""fileURLs are fetched safely: https only, public addresses only (after DNS, on every
redirect, pinned for the connection), bounded in size and time, routed and sniffed like
Slack uploads; each refused URL is reported while the others go through."""

from __future__ import annotations

import ipaddress
from itertools import cycle

import pytest

from commander.api.fetch import AddressPolicy, address_kind, url_problem
from tests.api.harness import FETCH_TIMEOUT_S, PUBLIC_IP, Api


async def create_with(api: Api, user: str, *urls: str) -> dict:
    return await api.create(user, fileURLs=list(urls))


def reasons(created: dict) -> dict[str, str]:
    return {r["url"]: r["reason"] for r in created["refused"]}


async def test_refused_urls_are_reported_one_by_one_and_the_others_go_through(api: Api) -> None:
    good, notes = api.files.url("/a.pdf"), api.files.url("/notes.txt")
    plain = f"http://files.test:{api.files.port}/b.pdf"
    created = await create_with(api, "u1", good, plain, notes, api.files.url("/missing.pdf"))
    assert len(created["file_ids"]) == 2
    assert reasons(created) == {
        plain: "only https links are fetched",
        api.files.url("/missing.pdf"): "its server answered 404",
    }
    status = (await api.call("GET", "/api/status/u1")).json()
    assert [f["name"] for f in status["files"]] == ["a.pdf", "notes.txt"]


@pytest.mark.parametrize("target", ["127.0.0.1", "169.254.169.254", "[::1]", "10.0.0.7"])
async def test_redirects_into_the_network_are_refused(api: Api, target: str) -> None:
    port = api.internal.port
    url = api.files.url(f"/redirect?to=https://{target}:{port}/secret.pdf")
    created = await create_with(api, f"r{len(target)}", url)
    assert created["file_ids"] == []
    assert "redirects to a link that is refused" in reasons(created)[url]
    assert api.internal.hits == []


async def test_redirect_to_a_name_resolving_inside_is_refused(api: Api) -> None:
    api.dns.names["internal.test"] = ["127.0.0.1"]
    target = f"https://internal.test:{api.internal.port}/secret.pdf"
    url = api.files.url(f"/redirect?to={target}")
    created = await create_with(api, "u2", url)
    assert "loopback address" in reasons(created)[url]
    assert api.internal.hits == []


async def test_redirect_to_a_public_file_is_followed(api: Api) -> None:
    url = api.files.url("/redirect?to=/real.pdf")
    created = await create_with(api, "u3", url)
    assert len(created["file_ids"]) == 1 and created["refused"] == []


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (["127.0.0.1"], "loopback"),
        (["10.1.2.3"], "private"),
        (["192.168.0.10"], "private"),
        (["169.254.169.254"], "link-local"),
        (["::ffff:127.0.0.1"], "loopback"),
        (["fd00::1"], "private"),
        ([PUBLIC_IP, "127.0.0.1"], "loopback"),  # one bad address spoils the name
    ],
)
async def test_names_resolving_to_private_addresses_are_refused(
    api: Api, answer: list[str], kind: str
) -> None:
    api.dns.names["evil.test"] = answer
    url = f"https://evil.test:{api.internal.port}/x.pdf"
    created = await create_with(api, "dns", url)
    assert reasons(created)[url] == f"it leads to a {kind} address, which the API does not fetch"
    assert api.internal.hits == []


async def test_dns_rebinding_cannot_switch_the_checked_address(api: Api) -> None:
    # The name answers public, then loopback, alternately. Whatever the timing, the
    # connection goes only to an address that was checked: never to the internal server.
    answers = cycle([[PUBLIC_IP], ["127.0.0.1"]])
    api.dns.names["rebind.test"] = lambda: next(answers)
    urls = [f"https://rebind.test:{api.files.port}/f{i}.pdf" for i in range(4)]
    internal_port_urls = [f"https://rebind.test:{api.internal.port}/s{i}.pdf" for i in range(4)]
    created = await create_with(api, "rebind", *urls, *internal_port_urls)
    assert api.internal.hits == []
    assert len(created["file_ids"]) == 4  # the public server, on the checked address
    # Towards the internal server's port: either the loopback answer is refused, or the
    # public answer is used, where nothing listens on that port.
    assert {r["reason"] for r in created["refused"]} == {
        "it leads to a loopback address, which the API does not fetch",
        "it could not be fetched (ClientConnectorError)",
    }


async def test_unknown_names_and_bad_urls_are_refused(api: Api) -> None:
    bad = [
        "https://nowhere.test/a.pdf",
        "https://169.254.169.254/latest/meta-data",
        "https://[fe80::1%25eth0]/a.pdf",
        "https://2130706433/a.pdf",
        "https://user:pw@files.test/a.pdf",
        "file:///etc/passwd",
        "ftp://files.test/a.pdf",
        "https:///a.pdf",
        "https://files.test:99999/a.pdf",
        "not a url",
        "https://8.8.8.8/a.pdf",  # public, but outside the test network: never contacted
    ]
    created = await create_with(api, "bad", *bad)
    assert created["file_ids"] == [] and set(reasons(created)) == set(bad)


async def test_oversized_files_are_refused(api: Api) -> None:
    big, endless = api.files.url("/big.pdf"), api.files.url("/endless.pdf")
    created = await create_with(api, "big", big, endless, api.files.url("/ok.pdf"))
    assert reasons(created) == {
        big: "it is larger than the 1 MB limit",
        endless: "it is larger than the 1 MB limit",
    }
    assert len(created["file_ids"]) == 1


async def test_slow_files_time_out(api: Api) -> None:
    slow = api.files.url("/slow.pdf")
    created = await create_with(api, "slow", slow, api.files.url("/ok.pdf"))
    assert reasons(created) == {slow: f"fetching it took longer than {FETCH_TIMEOUT_S:g} s"}
    assert len(created["file_ids"]) == 1


async def test_types_are_routed_and_sniffed_as_for_slack_uploads(api: Api) -> None:
    login, exe = api.files.url("/login.pdf"), api.files.url("/tool.exe")
    created = await create_with(api, "types", login, exe, api.files.url("/data.csv"))
    assert reasons(created) == {
        login: "it is a web page, not a file of its stated type",
        exe: "“.exe” files are not supported by your assistant's tools",
    }
    status = (await api.call("GET", "/api/status/types")).json()
    assert [(f["name"], f["tools"]) for f in status["files"]] == [
        ("data.csv", ["code_interpreter"])
    ]


async def test_an_untrusted_certificate_is_refused(api: Api) -> None:
    # The internal server's certificate is trusted by the test CA but not for this name.
    api.dns.names["other.test"] = [PUBLIC_IP]
    url = f"https://other.test:{api.files.port}/a.pdf"
    created = await create_with(api, "tls", url)
    assert reasons(created) == {url: "its server's TLS certificate could not be verified"}


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "non-public"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:7f00:1::", "loopback"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_classification(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_production_policy_allows_public_addresses_and_literals_are_checked() -> None:
    policy = AddressPolicy()
    assert url_problem("https://8.8.8.8/a.pdf", policy) is None
    assert url_problem("https://example.com/a.pdf", policy) is None
    assert "loopback" in (url_problem("https://127.0.0.1/a.pdf", policy) or "")
    assert "link-local" in (url_problem("https://[::ffff:169.254.169.254]/", policy) or "")
    assert url_problem("http://example.com/a.pdf", policy) == "only https links are fetched"
