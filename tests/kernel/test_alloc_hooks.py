"""The allocators' hooks keys (<kmemu/alloc_hooks.h>): each fast path has ONE
static-key site for every optional hook that runs out of line, the keys count their
users (the bad-page checks, slab_debug, KUnit tracking, fault injection, kmemleak, the
trace events), and the hooks behind them still do their work when their own feature is
on.  might_sleep's check (on at boot) holds no count on slab_hooks_key: the slab
allocation paths test it inline behind its own key, debug_atomic_sleep_key."""

from __future__ import annotations

from collections import Counter

from emu import Machine

FAST_PATHS = ("kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free",
              "alloc_pages",  # __alloc_pages, by its alias
              "__free_pages")


def sites_by_function(m: Machine) -> Counter[tuple[str, str]]:
    """(function, key name) -> number of static-key sites of that key in it."""
    return Counter((m.symbolize(s.code).split("+")[0], k.name)
                   for k in m.static_keys() for s in k.sites)


def users(m: Machine, key: str) -> int:
    return int.from_bytes(m.read_virt(m.symbol(key), 4), "little", signed=True)


def test_each_fast_path_has_one_site(machine: Machine) -> None:
    sites = sites_by_function(machine)
    for fn in FAST_PATHS:
        in_fn = {key: n for (f, key), n in sites.items() if f == fn}
        if "pages" in fn:
            want = {"page_hooks_key": 1}
        elif "alloc" in fn:  # might_sleep's inline check: its own key, no hooks
            want = {"slab_hooks_key": 1, "debug_atomic_sleep_key": 1}
        else:
            want = {"slab_hooks_key": 1}
        assert in_fn == want, (fn, in_fn)


def key_state(m: Machine) -> tuple[int, int, int]:
    return (users(m, "slab_hooks_key"), users(m, "page_hooks_key"),
            users(m, "debug_atomic_sleep_key"))


def test_features_take_and_give_back_counts(machine: Machine) -> None:
    m = machine
    # at boot: might_sleep's checks (its own key and the page key), the bad-page checks
    # (page key); no feature that is on needs the slab hooks
    assert key_state(m) == (0, 2, 1)
    keys = {k.name: k for k in m.static_keys()}
    assert all(s.state == "nop" for s in keys["slab_hooks_key"].sites)
    assert m.alloc_debug(might_sleep=False, bad_page=False) == {"might_sleep": True,
                                                                 "bad_page": True}
    assert key_state(m) == (0, 0, 0)
    keys = {k.name: k for k in m.static_keys()}
    assert all(s.state == "nop" for k in ("slab_hooks_key", "page_hooks_key")
               for s in keys[k].sites)
    m.failslab(probability=100, times=-1, ignore_gfp_wait=0, verbose=0)  # on: both keys
    assert key_state(m) == (1, 1, 0)
    assert m.kmalloc(64) == 0  # the hook works behind the shared key
    m.failslab(probability=0)
    assert key_state(m) == (0, 0, 0)
    m.call("kunit_track_prepare")
    m.call("kunit_track_prepare")  # once on, stays on: no second count
    assert key_state(m) == (1, 1, 0)
    m.alloc_debug(might_sleep=True)
    assert key_state(m) == (1, 2, 1)
    m.kmem_cache_create("hooks_debug", 32, flags="SLAB_RED_ZONE")  # slab_debug on, for good
    assert key_state(m) == (2, 2, 1)
    m.alloc_debug(might_sleep=False)  # off before the others: theirs stay
    assert key_state(m) == (2, 1, 0)
    assert all(k.consistent for k in m.static_keys())


def test_might_sleep_alone_leaves_the_hooks_off(machine: Machine) -> None:
    """At the boot defaults an allocation in process context runs none of the hooks,
    one in atomic context (or with a blocking gfp and interrupts off) takes them to
    report, and an atomic gfp in atomic context does not."""
    m = machine
    m.kfree(m.kmalloc(64))
    with m.breakpoint("slab_alloc_hooks") as bp:
        m.kfree(m.kmalloc(64))
        m.kfree(m.kmalloc(64, "GFP_ATOMIC", context="irq"))
        assert bp.hits == 0
        n = len(m.events)
        m.kfree(m.kmalloc(64, "GFP_KERNEL", context="irq"))
        assert bp.hits == 1
        assert [e.kind for e in m.events[n:]] == ["sleep_in_atomic"]


def test_might_sleep_in_both_allocators_follows_its_switch(machine: Machine) -> None:
    m = machine
    m.kfree(m.kmalloc(64))  # an active slab: the kmalloc below needs no new page
    for on in (True, False, True):
        m.alloc_debug(might_sleep=on)
        n = len(m.events)
        p = m.kmalloc(64, "GFP_KERNEL", context="irq")
        va = m.alloc_pages("GFP_KERNEL", 0, context="irq")
        assert p and va  # reported or not, the allocations go on (as Linux)
        kinds = [e.kind for e in m.events[n:]]
        assert kinds == (["sleep_in_atomic"] * 2 if on else []), (on, kinds)
        m.kfree(p)
        m.free_pages(va, 0)


def test_bad_page_checks_follow_their_switch(machine: Machine) -> None:
    m = machine
    va = m.alloc_pages("GFP_KERNEL", 0)
    m.free_pages(va, 0)
    n = len(m.events)
    m.free_pages(va, 0)  # a double free, caught
    assert [e.kind for e in m.events[n:]] == ["bad_page"]
    assert m.alloc_debug(bad_page=False)["bad_page"] is True
    assert m.alloc_debug()["bad_page"] is False
