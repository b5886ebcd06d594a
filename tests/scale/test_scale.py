"""Scale-out, for real: two gateways, vLLM's router (cache_aware) and two CPU vLLM replicas on
podman (docker-compose.scale.yml). In order, each measured into test-artifacts/scale/:

(a) requests spread over both replicas (each replica's own vLLM counters);
(b) requests sharing a long prefix land on one replica (and hit its prefix cache);
(c) a replica killed mid-load: answers keep coming, only requests in flight may fail, each with
    a clean OpenAI 5xx error; the replica rejoins after its restart (checked last: it loads);
(d) the gateways share limits (a key with rpm=N gets exactly N over the two), budgets and the
    response cache through Redis, conversations through PostgreSQL; one stopped, or crashed,
    mid-load: the other keeps serving;
(e) no usage row lost for any answered request;
and Prometheus scrapes every replica, found by DNS.

Run by `make test-scale`, not by `make test`. Generations stay short (max_tokens <= 8)."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import httpx
import pytest

from tests.scale.cluster import MODEL, REPLICAS, ScaleStack
from tests.scale.conftest import BUDGET_TOKENS, LIMITED_RPM, Accounts
from tests.scale.load import Gateways, Load, Outcome, overlapping, run
from tests.scale.report import Report
from tests.support.waiting import wait_for
from tests.support.web_session import WebSession

pytestmark = pytest.mark.timeout(1800)

MAX_TOKENS = 8
CRASH_WINDOW = 3.0
"""Seconds before a gateway's crash whose answers may lose their usage rows with it (three of
its flush intervals, SWITCHBOARD_USAGE_FLUSH_INTERVAL)."""
REJOIN = 900.0
"""Seconds a killed vLLM replica may take to load again and rejoin (2 busy cores)."""
WORDS = """river stone lantern orbit copper meadow signal harbor violet engine quartz maple tundra
falcon ember glacier prism canyon velvet beacon cobalt willow summit pixel thunder coral saffron
nebula anchor cedar marble comet jasmine fjord timber cipher lagoon ivory gravel"""


def words(seed: int, characters: int) -> str:
    rng = random.Random(seed)
    text = ""
    while len(text) < characters:
        text += rng.choice(WORDS.split()) + " "
    return text.strip()


def chat(
    content: str,
    *,
    system: str = "",
    stream: bool = False,
    temperature: float = 0.8,
    max_tokens: int = MAX_TOKENS,
) -> dict[str, object]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": content})
    return {
        "model": MODEL,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": stream,
    }


def distinct(number: int, stream: bool = False) -> dict[str, object]:
    """A prompt that shares nothing with the others but the chat template (well under the
    router's 30 % cache threshold): placed by load, not by prefix."""
    return chat(f"Summarise in two words: {words(number, 480)}", stream=stream)


@dataclass
class Ledger:
    """Every request the tests sent, for (e); those a crashed gateway answered last are kept
    apart (rows it had not flushed yet die with it)."""

    outcomes: list[Outcome] = field(default_factory=list)
    crash_window: list[Outcome] = field(default_factory=list)
    replica_restarted_at: float = 0.0


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger()


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    return {name: round(after[name] - before[name]) for name in before}


def by_gateway(outcomes: list[Outcome], urls: list[str]) -> list[int]:
    counted = Counter(o.gateway for o in outcomes if o.answered)
    return [counted[url] for url in urls]


def test_a_requests_spread_over_both_replicas(
    scale: ScaleStack, gateways: Gateways, ledger: Ledger, report: Report
) -> None:
    count = 24
    before = scale.served()
    outcomes = run(lambda n: gateways.send(distinct(n)), count, namespace=gateways.namespace)
    served = delta(before, scale.served())
    ledger.outcomes += outcomes
    assert [o for o in outcomes if not o.answered] == []
    assert sum(served.values()) == count, served
    assert min(served.values()) >= count // 6, f"not spread: {served}"
    per_gateway = by_gateway(outcomes, gateways.urls)
    assert min(per_gateway) > 0, per_gateway
    report.record(
        "a_spread",
        requests=count,
        per_replica=served,
        per_gateway=per_gateway,
        router_decisions=scale.router_decisions(),
    )
    report.row(
        "(a) spread",
        f"{count} unrelated prompts, 4 clients, over both gateways",
        f"replicas {served[REPLICAS[0]]} / {served[REPLICAS[1]]}; "
        f"gateways {per_gateway[0]} / {per_gateway[1]}",
    )


def test_b_requests_sharing_a_long_prefix_land_on_one_replica(
    scale: ScaleStack, gateways: Gateways, ledger: Ledger, report: Report
) -> None:
    groups: dict[str, dict[str, object]] = {}
    placed: list[str] = []
    for name, seed in (("A", 1000), ("B", 2000)):
        system = f"You answer questions about this inventory. {words(seed, 1500)}"
        before, hits_before = scale.served(), scale.prefix_hits()
        decided_before = scale.router_decisions()

        def ask(n: int, system: str = system) -> Outcome:
            return gateways.send(chat(f"Question {n}: which word comes first?", system=system))

        # the first one alone (a conversation's first turn): the router learns where it went;
        # two sent at once with nothing learnt yet may go one to each replica
        def ask_next(n: int, ask: Callable[[int], Outcome] = ask) -> Outcome:
            return ask(n + 1)

        rest = run(ask_next, 7, workers=2, namespace=gateways.namespace)
        outcomes = [ask(0), *rest]
        served, hits = delta(before, scale.served()), delta(hits_before, scale.prefix_hits())
        ledger.outcomes += outcomes
        assert [o for o in outcomes if not o.answered] == []
        assert sorted(served.values()) == [0, 8], f"prefix {name} split: {served}"
        replica = next(r for r, n in served.items() if n)
        assert hits[replica] > 0, f"no prefix-cache hit on {replica}: {hits}"
        decided = scale.router_decisions()
        groups[name] = {
            "per_replica": served,
            "prefix_cache_hit_tokens": hits,
            "per_gateway": by_gateway(outcomes, gateways.urls),
            "router_decisions": {
                k: v - decided_before.get(k, 0.0)
                for k, v in decided.items()
                if v != decided_before.get(k, 0.0)
            },
        }
        placed.append(f"{name}: 8/8 on {replica} ({hits[replica]} prompt tokens from its cache)")
    report.record("b_prefix_affinity", requests_per_prefix=8, groups=groups)
    report.row(
        "(b) prefix affinity",
        "8 requests sharing a 1,500-character system prompt, "
        "twice (prefixes A and B), over both gateways",
        "; ".join(placed),
    )


# Before the replica is killed: a container leaving the network stalls new connections between
# the others for seconds on podman 4.3 (docs/scaling.md), and this test opens the gateways'
# first connections to the cache's Redis (seen: both timed out, a miss on each gateway).
def test_d_the_response_cache_is_shared(gateways: Gateways, ledger: Ledger, report: Report) -> None:
    body = chat(f"Deterministic: {words(7, 60)}", temperature=0)
    first = gateways.send(body, to=gateways.urls[0])
    second = gateways.send(body, to=gateways.urls[1])
    ledger.outcomes += [first, second]
    assert (first.answered, first.cache) == (True, "miss")
    assert (second.answered, second.cache) == (True, "hit")
    report.record("d_cache", first_gateway=first.cache, second_gateway=second.cache)
    report.row(
        "(d) shared cache",
        "one deterministic request to each gateway",
        "gateway 1: miss; gateway 2: hit",
    )


def test_c_a_replica_killed_mid_load_costs_only_requests_in_flight(
    scale: ScaleStack, gateways: Gateways, ledger: Ledger, report: Report
) -> None:
    victim = REPLICAS[1]
    with Load(
        lambda n: gateways.send(distinct(100 + n, stream=n % 2 == 0)), namespace=gateways.namespace
    ) as load:
        load.start()
        wait_for(lambda: load.finished() >= 8, "the load is running", 300, every=0.2)
        killed, gone = scale.kill(scale.stack.container(victim))
        noticed = scale.wait_router_sees(victim, healthy=False, timeout=120)
        time.sleep(10)  # answers keep coming from the survivor
        outcomes = load.stop()
    scale.podman("start", scale.stack.container(victim))  # loads while (d) runs; checked last
    ledger.replica_restarted_at = time.monotonic()
    ledger.outcomes += outcomes

    # under way while it died: started before it was gone, still running when the signal went
    in_flight = overlapping(outcomes, killed, gone)
    failed = [o for o in outcomes if not o.answered]
    unclean = [o for o in failed if not o.clean_error]
    after = [o for o in outcomes if o.started > gone]
    assert unclean == [], [(o.status, o.error) for o in unclean]
    assert [o for o in failed if o not in in_flight] == [], "a request not in flight failed"
    assert all(o.status >= 500 or o.stream for o in failed), [o.status for o in failed]
    assert [o for o in after if not o.answered] == [], "a request sent after the kill failed"
    assert len(after) >= 4
    statuses = Counter(
        "an error event in a stream" if o.stream else f"HTTP {o.status}" for o in failed
    )
    report.record(
        "c_replica_killed",
        requests=len(outcomes),
        in_flight_at_kill=len(in_flight),
        kill_seconds=round(gone - killed, 2),
        failed=len(failed),
        failed_statuses=dict(statuses),
        answered_after_kill=len(after),
        router_noticed_seconds=round(noticed, 1),
        failed_errors=[o.error[:160] for o in failed],
    )
    report.row(
        "(c) replica killed",
        f"SIGKILL to {victim} under 4 clients (half streaming)",
        f"{len(outcomes)} requests, {len(in_flight)} in flight at the kill, {len(failed)} failed "
        f"({', '.join(f'{n}: {s}' for s, n in statuses.items()) or 'none'}; OpenAI's error "
        f"shape), {len(after)} sent after it all answered; the router marked it down "
        f"after {noticed:.0f} s",
    )


def test_d_rate_limits_are_exact_across_both_gateways(
    gateways: Gateways, accounts: Accounts, ledger: Ledger, report: Report
) -> None:
    body = chat("Reply with one word: ok", temperature=0, max_tokens=1)
    urls = gateways.urls
    outcomes = run(
        lambda n: gateways.send(body, key=accounts.limited, to=urls[n % 2]),
        3 * LIMITED_RPM,
        workers=6,
        namespace=gateways.namespace,
    )
    ledger.outcomes += outcomes
    statuses = Counter(o.status for o in outcomes)
    assert statuses == {200: LIMITED_RPM, 429: 2 * LIMITED_RPM}, statuses
    per_gateway = by_gateway(outcomes, urls)
    report.record(
        "d_rate_limit",
        rpm=LIMITED_RPM,
        sent=len(outcomes),
        statuses=dict(statuses),
        answered_per_gateway=per_gateway,
    )
    report.row(
        "(d) shared rate limit",
        f"a key with rpm={LIMITED_RPM}: {len(outcomes)} requests "
        "at once, alternating between the gateways",
        f"{statuses[200]} answered ({per_gateway[0]} + {per_gateway[1]}), "
        f"{statuses[429]} refused with 429",
    )


def test_d_a_budget_holds_across_both_gateways(
    scale: ScaleStack, gateways: Gateways, accounts: Accounts, ledger: Ledger, report: Report
) -> None:
    urls = gateways.urls
    outcomes = run(
        lambda n: gateways.send(chat(words(300 + n, 120)), key=accounts.budgeted, to=urls[n % 2]),
        24,
        workers=6,
        namespace=gateways.namespace,
    )
    ledger.outcomes += outcomes
    answered = [o for o in outcomes if o.answered]
    refused = [o for o in outcomes if o.status == 429]
    assert len(answered) + len(refused) == len(outcomes)
    assert answered, "the budget let nothing through"
    assert refused, "the budget refused nothing"
    query = (
        "select coalesce(sum(total_tokens), 0), count(*) from usage_records where user_id ="
        " (select id from users where username = 'budgeted') and status = 200"
    )
    wait_for(
        lambda: int(scale.sql(query)[0][1]) == len(answered),
        "the answered requests' usage rows",
        60,
        every=2.0,
    )
    spent = int(scale.sql(query)[0][0])
    assert spent <= BUDGET_TOKENS
    report.record(
        "d_budget",
        budget_tokens=BUDGET_TOKENS,
        answered=len(answered),
        refused=len(refused),
        spent_tokens=spent,
        answered_per_gateway=by_gateway(outcomes, urls),
    )
    report.row(
        "(d) shared budget",
        f"a user with a {BUDGET_TOKENS}-token budget: 24 requests "
        "at once, alternating between the gateways",
        f"{len(answered)} answered, {len(refused)} refused (429); {spent} tokens spent "
        f"of {BUDGET_TOKENS}",
    )


class AsTheProxy(httpx.BaseTransport):
    """Plays the TLS proxy in front of one gateway replica: the browser speaks https to the
    public name, the gateway gets http with X-Forwarded-Proto (it trusts the edge network)."""

    def __init__(self, gateway_url: str) -> None:
        self.gateway = httpx.URL(gateway_url)
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # a request of its own: the client reads cookies against the URL it asked for (https)
        url = request.url.copy_with(scheme="http", host=self.gateway.host, port=self.gateway.port)
        headers = request.headers.copy()
        headers["X-Forwarded-Proto"] = "https"
        forwarded = httpx.Request(
            request.method,
            url,
            headers=headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return self.inner.handle_request(forwarded)

    def close(self) -> None:
        self.inner.close()


def test_d_a_conversation_started_on_one_gateway_continues_on_the_other(
    gateways: Gateways, accounts: Accounts, report: Report
) -> None:
    first, second = gateways.urls
    with (
        WebSession("https://localhost", transport=AsTheProxy(first)) as on_first,
        WebSession("https://localhost", transport=AsTheProxy(second)) as on_second,
    ):
        assert on_first.sign_in("ada", accounts.password).status_code == 303
        conversation = on_first.new_conversation()
        sent = on_first.post(
            f"/chat/{conversation}/messages", {"content": "Name one planet."}, htmx=True
        )
        assert sent.status_code == 200, sent.text
        stream = re.search(r'sse-connect="([^"]+)"', sent.text)
        assert stream, sent.text
        on_second.http.cookies = on_first.http.cookies  # the session lives in Redis
        events = on_second.stream_events(stream.group(1))  # the answer, through the other one
        assert events[-1][0] == "done", events[-3:]
        page = on_first.get(f"/chat/{conversation}")
    assert "Name one planet." in page.text
    assert 'class="body markdown"' in page.text  # the answer the other gateway stored
    report.record("d_conversation", conversation=conversation, events=len(events))
    report.row(
        "(d) shared conversations",
        "a message sent through gateway 1, its answer "
        "streamed through gateway 2, the page read through gateway 1",
        "the same sign-in on both (Redis); question and answer on the page (PostgreSQL)",
    )


def gateway_down_under_load(
    scale: ScaleStack, gateways: Gateways, replica: int, signal: str
) -> tuple[list[Outcome], float, float]:
    """Load through both gateways (a balancer skips one that refuses connections); ``replica``
    stopped (TERM: drained) or crashed (KILL) midway; it is started again afterwards. Returns
    the outcomes, when the signal went and when it had exited (monotonic)."""
    container = scale.stack.container("gateway", replica)
    with Load(
        lambda n: gateways.send(distinct(500 + n, stream=n % 2 == 0)), namespace=gateways.namespace
    ) as load:
        load.start()
        wait_for(lambda: load.finished() >= 8, "the load is running", 300, every=0.2)
        if signal == "TERM":
            signalled = time.monotonic()
            scale.podman("stop", "--time", "45", container)  # returns once it has exited
            gone = time.monotonic()
        else:
            signalled, gone = scale.kill(container)
        time.sleep(10)  # the other one carries the load alone
        outcomes = load.stop()
    scale.podman("start", container)
    scale.stack.wait_health("gateway", "healthy", 300, replica=replica)
    gateways.urls = scale.gateway_urls()  # a started container may have a new address
    settle(gateways)
    return outcomes, signalled, gone


def settle(gateways: Gateways) -> None:
    """Wait until every gateway answers a completion again. Podman reconfigures the networks
    when a container starts, and connections between the others may stall for some seconds
    (seen: the gateways' connects to the router and their DNS lookups timed out for about ten
    seconds after a gateway started): the next measurement must not count that."""

    def answers(url: str) -> bool:
        probe = chat("Reply with one word: ready")
        outcome = run(lambda _: gateways.send(probe, to=url), 1, namespace=gateways.namespace)
        return outcome[0].answered

    for url in gateways.urls:
        wait_for(partial(answers, url), f"{url} answers a completion", 180, every=2.0)


def test_d_a_gateway_stopped_mid_load_drains_and_the_other_keeps_serving(
    scale: ScaleStack, gateways: Gateways, ledger: Ledger, report: Report
) -> None:
    stopped_url = gateways.urls[0]
    outcomes, signalled, gone = gateway_down_under_load(scale, gateways, 1, "TERM")
    in_flight, seconds = len(overlapping(outcomes, signalled, signalled)), gone - signalled
    ledger.outcomes += outcomes
    failed = [o for o in outcomes if not o.answered]
    assert failed == [], [(o.gateway, o.status, o.error) for o in failed]
    by_stopped = sum(o.gateway == stopped_url for o in outcomes)
    report.record(
        "d_gateway_stopped",
        requests=len(outcomes),
        in_flight_at_stop=in_flight,
        failed=len(failed),
        answered_by_stopped_gateway=by_stopped,
        seconds_to_stop=round(seconds, 1),
    )
    report.row(
        "(d) gateway stopped",
        "SIGTERM to gateway 1 under 4 clients (as compose and Kubernetes stop a replica)",
        f"{len(outcomes)} requests, {in_flight} in flight, 0 failed: it finished them "
        f"({seconds:.0f} s to exit), the other took the rest",
    )


def test_d_a_gateway_crash_costs_only_its_requests_in_flight(
    scale: ScaleStack, gateways: Gateways, ledger: Ledger, report: Report
) -> None:
    crashed_url = gateways.urls[1]
    outcomes, killed_at, gone = gateway_down_under_load(scale, gateways, 2, "KILL")
    in_flight = overlapping(outcomes, killed_at, gone)
    ledger.outcomes += outcomes
    # the rows of what it answered in its last flush intervals (1 s each) may die with it:
    # counted apart in (e)
    ledger.crash_window += [
        o
        for o in outcomes
        if o.gateway == crashed_url and o.answered and o.ended > killed_at - CRASH_WINDOW
    ]
    failed = [o for o in outcomes if not o.answered]
    assert [o for o in failed if o not in in_flight] == [], "a request not in flight failed"
    assert all(o.gateway == crashed_url for o in failed), [(o.gateway, o.error) for o in failed]
    answered_after = [o for o in outcomes if o.answered and o.gateway != crashed_url]
    assert answered_after
    report.record(
        "d_gateway_crashed",
        requests=len(outcomes),
        in_flight_at_kill=len(in_flight),
        failed=len(failed),
        failed_errors=[o.error[:120] for o in failed],
    )
    report.row(
        "(d) gateway crashed",
        "SIGKILL to gateway 2 under 4 clients",
        f"{len(outcomes)} requests, {len(in_flight)} in flight, {len(failed)} failed (those "
        "it was answering: the connection dropped), the other answered the rest",
    )


def test_c_the_killed_replica_rejoins(
    scale: ScaleStack, gateways: Gateways, ledger: Ledger, report: Report
) -> None:
    victim = REPLICAS[1]
    scale.stack.wait_health(victim, "healthy", REJOIN)
    scale.wait_router_sees(victim, healthy=True, timeout=120)
    rejoined = time.monotonic() - ledger.replica_restarted_at
    before = scale.served()
    outcomes = run(lambda n: gateways.send(distinct(900 + n)), 12, namespace=gateways.namespace)
    served = delta(before, scale.served())
    ledger.outcomes += outcomes
    assert [o for o in outcomes if not o.answered] == []
    assert served[victim] > 0, served
    report.record("c_rejoin", seconds_from_start_to_routed=round(rejoined), per_replica=served)
    report.row(
        "(c) replica rejoins",
        f"{victim} started again; then 12 unrelated prompts",
        f"back in the router's rotation {rejoined:.0f} s after its start (vLLM loads "
        f"again); it served {served[victim]} of 12",
    )


def test_prometheus_scrapes_every_replica_found_by_dns(scale: ScaleStack, report: Report) -> None:
    wanted = {"gateway": 2, "vllm": 2, "vllm-router": 1}

    def up() -> dict[str, int]:
        counted: Counter[str] = Counter()
        for target in scale.prometheus_targets():
            labels = target["labels"]
            assert isinstance(labels, dict)
            if target["health"] == "up" and labels["job"] in wanted:
                counted[labels["job"]] += 1
        return dict(counted)

    wait_for(lambda: up() == wanted, f"Prometheus scrapes {wanted}", 180, every=3.0)
    report.record("prometheus", targets_up=up())
    report.row(
        "Prometheus",
        "targets found by DNS (`dns_sd_configs`) and up",
        "gateway 2, vllm 2, vllm-router 1",
    )


def test_e_no_usage_row_is_lost_for_any_answered_request(
    scale: ScaleStack, ledger: Ledger, report: Report
) -> None:
    """Last: every request the tests sent, answered or not, by request id."""
    outcomes = [o for o in ledger.outcomes if o.request_id]
    answered = {o.request_id for o in outcomes if o.answered}
    window = {o.request_id for o in ledger.crash_window}
    ids = ",".join(f"'{o.request_id}'" for o in outcomes)

    def rows() -> Counter[str]:
        return Counter(
            r[0]
            for r in scale.sql(f"select request_id from usage_records where request_id in ({ids})")
        )

    wait_for(
        lambda: answered - window <= set(rows()),
        "the usage rows of every answered request outside the crash",
        60,
        every=2.0,
    )
    found = rows()
    assert [rid for rid, n in found.items() if n > 1] == [], "a request counted twice"
    lost_in_crash = len(window - set(found))
    failed = {o.request_id for o in outcomes if not o.answered}
    report.record(
        "e_usage",
        answered=len(answered),
        answered_with_row=len(answered & set(found)),
        crash_window=len(window),
        lost_in_crash=lost_in_crash,
        failed_with_status=len(failed),
        failed_with_row=len(failed & set(found)),
    )
    report.row(
        "(e) usage rows",
        "every request of (a) to (d) looked up by its request id",
        f"{len(answered & set(found))} of {len(answered)} answered requests have their "
        f"row ({lost_in_crash} of the {len(window)} the crashed gateway answered in its "
        f"last {CRASH_WINDOW:.0f} s lost); {len(failed & set(found))} of {len(failed)} failed "
        "ones too; none twice",
    )
