"""The allocators' combined hooks keys (<kmemu/alloc_hooks.h>): each fast path has ONE
static-key site for every optional hook, the keys count their users (might_sleep's
checks, the bad-page checks, slab_debug, KUnit tracking, fault injection), and the
hooks behind them still do their work when their own feature is on."""

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
        want = "page_hooks_key" if "pages" in fn else "slab_hooks_key"
        assert in_fn == {want: 1}, (fn, in_fn)


def test_features_take_and_give_back_counts(machine: Machine) -> None:
    m = machine
    # at boot: might_sleep's checks (both keys) and the bad-page checks (page key)
    assert (users(m, "slab_hooks_key"), users(m, "page_hooks_key")) == (1, 2)
    assert m.alloc_debug(might_sleep=False, bad_page=False) == {"might_sleep": True,
                                                                 "bad_page": True}
    assert (users(m, "slab_hooks_key"), users(m, "page_hooks_key")) == (0, 0)
    keys = {k.name: k for k in m.static_keys()}
    assert all(s.state == "nop" for k in ("slab_hooks_key", "page_hooks_key")
               for s in keys[k].sites)
    m.failslab(probability=100, times=-1, ignore_gfp_wait=0, verbose=0)  # on: both keys
    assert (users(m, "slab_hooks_key"), users(m, "page_hooks_key")) == (1, 1)
    assert m.kmalloc(64) == 0  # the hook works behind the shared key
    m.failslab(probability=0)
    assert (users(m, "slab_hooks_key"), users(m, "page_hooks_key")) == (0, 0)
    m.call("kunit_track_prepare")
    m.call("kunit_track_prepare")  # once on, stays on: no second count
    assert (users(m, "slab_hooks_key"), users(m, "page_hooks_key")) == (1, 1)
    m.alloc_debug(might_sleep=True)
    assert (users(m, "slab_hooks_key"), users(m, "page_hooks_key")) == (2, 2)
    m.kmem_cache_create("hooks_debug", 32, flags="SLAB_RED_ZONE")  # slab_debug on, for good
    assert (users(m, "slab_hooks_key"), users(m, "page_hooks_key")) == (3, 2)
    assert all(k.consistent for k in m.static_keys())


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
