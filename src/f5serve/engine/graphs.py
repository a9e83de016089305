"""CUDA graphs for the flow step of an unchanged batch (the launch-bound, small-batch case).

One flow step launches about a thousand kernels; with few rows the GPU mostly waits for Python
to launch them. While a batch keeps its members, every step runs the same kernels on the same
buffers (the batch layout's tensors, updated in place), so the step is recorded once into a
``torch.cuda.CUDAGraph`` and replayed. :class:`~f5serve.engine.batching.FlowBatcher` decides
when: the first step of a new layout runs normally (on the capture stream: the warm-up CUDA
requires, which also builds any compiled graph for these shapes, so capturing compiles nothing);
a later step is captured when enough steps remain before a member finishes for the replays to
pay. Modes: ``off``, ``auto`` (on for CUDA only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

MODES = ("off", "auto")
Step = Callable[[], None]


def resolve_mode(mode: str, device: torch.device) -> bool:
    """Whether ``mode`` (``off`` or ``auto``) turns CUDA graphs on for ``device``."""
    if mode not in MODES:
        raise ValueError(f"CUDA graph mode {mode!r} is not one of {', '.join(MODES)}")
    return mode == "auto" and device.type == "cuda"


class StepGraphs:
    """Runs, captures and replays flow steps on one CUDA device.

    The hooks a batcher needs: :meth:`warm_up` runs a step eagerly, :meth:`capture` returns a
    replay function (or None when capture failed: graphs then stay off for this object, and the
    caller runs the step eagerly), :meth:`release` before a captured graph is dropped.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device)
        self.enabled = True

    def warm_up(self, step: Step) -> None:
        """Run ``step`` on the capture stream (cuBLAS/cuDNN state and compiled code for these
        shapes are made here, outside any capture)."""
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            step()
        current.wait_stream(self.stream)

    def capture(self, step: Step) -> Step | None:
        """Record ``step`` (nothing runs); the graph's ``replay``, or None if capture failed."""
        graph = torch.cuda.CUDAGraph()
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        try:
            with torch.cuda.stream(self.stream):
                # thread_local: request threads may use the device while this one captures
                graph.capture_begin(capture_error_mode="thread_local")
                try:
                    step()
                finally:
                    graph.capture_end()
        except RuntimeError:
            log.warning("capturing a flow step failed; CUDA graphs are off", exc_info=True)
            self.enabled = False
            return None
        finally:
            current.wait_stream(self.stream)
        return graph.replay

    def release(self) -> None:
        """Wait for replays in flight before their graph (and its memory) is dropped."""
        torch.cuda.current_stream(self.device).synchronize()
