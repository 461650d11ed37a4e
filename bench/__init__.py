"""`python -m bench`: how fast and how lean the real bot is, on one machine.

Three processes per world, all on 127.0.0.1: `python -m bot` in HTTP mode (only
environment variables, as in production), `python -m tests.fakes.slack_server` and
`python -m tests.fakes.openai_server` (its time-to-first-token and token rate set by
flags). Each simulated user gets an assistant first: the database is seeded with the
core service (`bench/seed.py`, what `python -m commander` does) before the bot starts.
The driver then posts signed Slack events (tests/fakes/slack_requests.py) and reads
what happened from the fakes' /_fake/* routes: the fake model records the wall time of
each response's first and last delta, the fake Slack each thread's first text and every
call's time. All clocks are `time.time()` on the same machine.

    python -m bench            # full: 3 runs per figure, ~5 minutes
    python -m bench --quick    # shorter turns, < 2 minutes
    python -m bench --quick --smoke   # tiny, for CI (~25 s), no thresholds anywhere
    python -m bench --bot-root /path/to/other/checkout   # measure another version

Results: bench-results/latest.json (+ latest.md, the table), printed as a table too.
The stock tools run on fixed offline prices (`MARKET_DATA=fixed`, bot/demo_market.py).
See docs/performance.md for what each figure means and the latest numbers.
"""
