#!/usr/bin/env python3
"""Where prism's time goes, by operation class, from a `perf` recording (stdlib only).

burn's flex backend has no op-level profiler, so this reads call stacks sampled by Linux `perf`
(DWARF unwinding; the release build keeps its symbols) while the criterion benchmark
`crates/prism/benches/unet.rs` iterates one step (`--profile-time`). Record with:

    perf record -F 499 -e cpu-clock -e sched:sched_switch --call-graph dwarf,16384 -o P.data -- \\
        UNET_BENCH_BINARY --bench --profile-time 20 'unet/train_step/f32/fmnist'
    perf script -i P.data -F pid,tid,time,event,ip,sym > P.txt
    python3 tools/profile_prism.py P.txt [--step-seconds S] [--json OUT]

Method. Every sample is classified by its stack (the rules are `classify` below, in order):
allocation (the kernel's page-fault path, malloc / free / mmap / munmap, zero-filling a fresh
buffer), the optimizer (AdamW, EMA), then the outermost backend operation on the stack, read
from burn's own frames: a forward op is entered through `burn_dispatch::ops::…::NAME`, a backward
step is `…::NAME::Struct as burn_autodiff::ops::backward::Backward`, and a forward GroupNorm
is under `burn_nn::…::group_norm` (its backward is burn's element-wise and reduction steps, so it
is counted there). A sample inside burn's autodiff, dispatch or tensor code but in no kernel is
bookkeeping. flex runs kernels on a rayon pool, and a pool thread's stack ends at the job, not at
the operation: a pool thread's sample (other than allocation or waiting) takes the class of the
operation the main thread was in at that moment (its last sample or, while it sleeps waiting for the pool, the stack it went to sleep
with: the `sched_switch` events). Two measures come out:

- wall: the main thread's timeline (on and off the CPU) split by the operation it was in; this
  is the measure torch.profiler's op times correspond to;
- cpu: samples of all threads, so that work done in parallel counts once per core.

`--step-seconds` (the step time measured by criterion) turns the shares into seconds per step.
With one pool thread (RAYON_NUM_THREADS=1) the pool thread and the main thread never compute at
once, so the cpu shares are shares of the step's time too, and they are the steadier measure on a
loaded machine (the wall timeline depends on every sched_switch event being recorded).
"""
import argparse
import bisect
import json
import re
import sys
from collections import defaultdict

CLASSES = [
    "conv forward",
    "conv backward",
    "matmul (linear + attention products)",
    "normalisation (GroupNorm forward)",
    "attention softmax",
    "element-wise, reductions, copies",
    "autodiff & dispatch bookkeeping",
    "optimizer (AdamW, EMA)",
    "allocation (malloc/free, page faults, zero-fill)",
    "thread pool wait / sync",
    "bench input (host RNG)",
    "other",
]

ALLOC = re.compile(
    r"^(asm_exc_page_fault|exc_page_fault|do_anonymous_page|clear_page_erms|__handle_mm_fault|"
    r"malloc|free|cfree|__libc_malloc|__libc_free|_int_malloc|_int_free|malloc_consolidate|"
    r"__libc_calloc|calloc|realloc|__libc_realloc|_int_realloc|__GI___munmap|munmap|__munmap|"
    r"__mmap|mmap64|__GI___mmap64|madvise|__madvise|__rust_alloc|__rust_dealloc|__rust_realloc|"
    r"__rust_alloc_zeroed|sysmalloc|unlink_chunk.*|tcache_.*|__x64_sys_munmap|__x64_sys_madvise)$")
ZERO_FILL = re.compile(r"burn_flex::tensor::FlexTensor::(filled_typed|zeros)|float_zeros|float_ones")
SYNC = re.compile(r"sched_yield|futex|rayon_core::sleep|rayon_core::latch|wait_until_cold|"
                  r"wait_until|LockLatch|rayon_core::registry::WorkerThread::(take_local_job|steal)")
OPTIMIZER = re.compile(r"prism::train::optimizer|prism::train::ema|AdamW")
RNG = re.compile(r"prism::tensor::normal|rand_distr|rand_chacha|chacha20|burn_std::distribution|"
                 r"TensorData::random")
BACKWARD_STEP = re.compile(r">::(\w+)::\w+ as burn_autodiff::ops::backward::Backward")
FORWARD_OP = re.compile(r"^burn_dispatch::ops::\w+::<impl .*>::(\w+)$")
FLEX_OP = re.compile(r"^burn_flex::ops::(\w+)::")
# prism's own kernels (`prism::kernel`, burn backend extensions): module and item.
KERNEL = re.compile(r"prism::kernel::(conv|group_norm|silu)::(\w+)")
KERNEL_BACKWARD = {"input_grad", "weight_grad", "col2im_channel", "ConvBackward",
                   "ConvNoBiasBackward", "GroupNormBackward", "SiluBackward"}
BURN_RUNTIME = re.compile(r"^(<)?burn_(autodiff|dispatch|tensor|backend|std|ir)::")


def op_class(name, backward):
    """The class of the backend operation `name` (burn's op function name)."""
    n = name.lower()
    if "conv" in n:
        return "conv backward" if backward else "conv forward"
    if "matmul" in n:
        return "matmul (linear + attention products)"
    if "softmax" in n:
        return "attention softmax"
    if "group_norm" in n:
        return "normalisation (GroupNorm forward)"
    return "element-wise, reductions, copies"


def classify(frames):
    """frames: symbol names, leaf first."""
    return classify_op(frames)[0]


def classify_op(frames):
    """(class, burn op name or None) of a stack; frames: symbol names, leaf first."""
    c, op = _classify(frames)
    return c, op


def _classify(frames):
    if not frames:
        return "other", None
    # Allocation: within the frames below the first burn/prism frame (the allocator's own).
    for f in frames:
        if f.startswith(("burn_", "<burn_", "prism::", "gemm", "rayon")):
            break
        if ALLOC.match(f):
            return "allocation (malloc/free, page faults, zero-fill)", None
    if any(ZERO_FILL.search(f) for f in frames[:6]) and any(
            "memset" in f or ALLOC.match(f) for f in frames[:3]):
        return "allocation (malloc/free, page faults, zero-fill)", None
    if any(OPTIMIZER.search(f) for f in frames):
        return "optimizer (AdamW, EMA)", None
    if any(RNG.search(f) for f in frames):
        return "bench input (host RNG)", None
    backward = any("execute_steps" in f or "backward_impl" in f for f in frames)
    # The outermost operation (root side first).
    for f in reversed(frames):
        m = BACKWARD_STEP.search(f)
        if m:
            return op_class(m.group(1), True), m.group(1) + " (backward)"
        if f.startswith("burn_nn::") and ("group_norm" in f or "GroupNorm" in f):
            return "normalisation (GroupNorm forward)", "group_norm"
        m = KERNEL.search(f)
        if m:
            module, item = m.group(1), m.group(2)
            back = backward or item in KERNEL_BACKWARD
            if module == "conv":
                return ("conv backward" if back else "conv forward"), "prism conv " + item
            if module == "group_norm" and not back:
                return "normalisation (GroupNorm forward)", "prism group_norm"
            # GroupNorm's backward counts as element-wise, as burn's composed one did.
            return "element-wise, reductions, copies", f"prism {module} {item}"
        m = FORWARD_OP.match(f)
        if m:
            return op_class(m.group(1), backward), m.group(1)
    # No dispatch frame (a pool thread): the flex kernel, if the job names one.
    for f in reversed(frames):
        m = FLEX_OP.match(f)
        if m:
            return op_class(m.group(1), backward), m.group(1)
    if frames and SYNC.search(frames[0]) or any(SYNC.search(f) for f in frames[:4]):
        return "thread pool wait / sync", None
    if any(BURN_RUNTIME.match(f) for f in frames):
        return "autodiff & dispatch bookkeeping", None
    return None, None  # unknown: decided by the main thread


def parse(path):
    """Yields (pid, tid, time, event, frames) from `perf script -F pid,tid,time,event,ip,sym`."""
    head = re.compile(r"^\s*(\d+)/(\d+)\s+([\d.]+):\s+(?:\d+\s+)?([\w:-]+):")
    with open(path, errors="replace") as fh:
        cur = None
        for line in fh:
            if not line.strip():
                if cur:
                    yield cur
                cur = None
                continue
            m = head.match(line)
            if m and cur is None:
                cur = (int(m.group(1)), int(m.group(2)), float(m.group(3)), m.group(4), [])
                continue
            if cur is not None:
                parts = line.strip().split(None, 1)
                if len(parts) == 2:
                    sym = re.sub(r"\+0x[0-9a-f]+$", "", parts[1].rsplit(" (", 1)[0].strip())
                    cur[4].append(sym)
        if cur:
            yield cur


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("script", help="output of perf script -F pid,tid,time,event,ip,sym")
    p.add_argument("--step-seconds", type=float, help="measured step time (criterion)")
    p.add_argument("--skip", type=float, default=2.0,
                   help="seconds at the start left out (model init, warm-up)")
    p.add_argument("--frequency", type=float, default=499, help="perf record -F")
    p.add_argument("--top", type=int, default=12, help="operations listed by name")
    p.add_argument("--json")
    a = p.parse_args()

    events = list(parse(a.script))
    if not events:
        sys.exit("no samples")
    pid = events[0][0]
    t0 = min(e[2] for e in events) + a.skip
    events = [e for e in events if e[2] >= t0 and e[0] == pid]
    events.sort(key=lambda e: e[2])
    main_events = [(t, ev, classify(fr) or "other", classify_op(fr)[1])
                   for (_, tid, t, ev, fr) in events if tid == pid]
    if not main_events:
        sys.exit("no samples of the main thread")
    times = [t for t, _, _, _ in main_events]
    samples = [e for e in events if "cpu-clock" in e[3]]
    period = 1.0 / a.frequency

    wall = defaultdict(float)
    by_op = defaultdict(float)
    for i, (t, ev, c, op) in enumerate(main_events[:-1]):
        dt = main_events[i + 1][0] - t
        # A sample stands for one period; a switch-out for the time until the thread shows again.
        dt = dt if "sched_switch" in ev else min(dt, 2 * period)
        wall[c] += dt
        by_op[(c, op)] += dt
    cpu = defaultdict(int)
    alloc, sync = CLASSES[8], CLASSES[9]
    for (_, tid, t, ev, fr) in samples:
        c = classify(fr)
        if tid != pid and c not in (alloc, sync):
            # A pool thread works for the operation the main thread is in.
            i = bisect.bisect_right(times, t) - 1
            c = main_events[i][2] if i >= 0 else None
        cpu[c or "other"] += 1

    wall_total = sum(wall.values())
    cpu_total = sum(cpu.values())
    rows = []
    print(f"{'class':<50}{'wall %':>8}{'cpu %':>8}"
          + (f"{'s (wall)':>10}{'s (cpu)':>10}" if a.step_seconds else ""))
    for c in CLASSES:
        w = 100 * wall.get(c, 0) / wall_total
        u = 100 * cpu.get(c, 0) / cpu_total
        line = f"{c:<50}{w:>8.1f}{u:>8.1f}"
        if a.step_seconds:
            line += f"{w / 100 * a.step_seconds:>10.4f}{u / 100 * a.step_seconds:>10.4f}"
        print(line)
        rows.append(dict(cls=c, wall_pct=w, cpu_pct=u,
                         seconds_wall=(w / 100 * a.step_seconds) if a.step_seconds else None,
                         seconds_cpu=(u / 100 * a.step_seconds) if a.step_seconds else None))
    print(f"(main-thread timeline {wall_total:.1f} s, {cpu_total} CPU samples, "
          f"sampling period {period * 1e3:.1f} ms)")
    print("largest burn operations (wall %):")
    for (c, op), w in sorted(by_op.items(), key=lambda kv: -kv[1])[:a.top]:
        print(f"  {100 * w / wall_total:5.1f}  {op or '-'}  [{c}]")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(rows=rows, wall_seconds=wall_total, cpu_samples=cpu_total,
                           step_seconds=a.step_seconds), fh, indent=2)


if __name__ == "__main__":
    main()
