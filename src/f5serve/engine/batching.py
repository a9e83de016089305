"""Continuous batching of flow-matching chunks on one device.

Every :class:`FlowItem` carries its own time grid and step index, so items join and leave the
batch between any two steps; the step rule itself (guidance + Euler) is
:func:`f5serve.engine.sampler.flow_step`. Padded frames are masked (see ``dit.py``) and text
features are computed per item at its own length, so an item's result does not depend on its
batch company. With packing (``packing.py``) the transformer blocks skip the padding. On CUDA
the step of an unchanged batch can be replayed from a CUDA graph (``graphs.py``):
:meth:`FlowBatcher._advance` is the code that is captured, so it only updates the layout's
tensors in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from f5serve.engine import sampler
from f5serve.engine.dit import DiT
from f5serve.engine.graphs import StepGraphs
from f5serve.engine.masks import length_mask
from f5serve.engine.packing import Packing, pack_lengths

# A step is captured only when the batch keeps its members for at least this many steps (the
# captured one included), unless a newcomer joins: capturing costs about one eager step.
MIN_REPLAYS = 3


@dataclass(eq=False)
class FlowItem:
    """One chunk being sampled: fixed conditioning plus its position on its own time grid."""

    cond: torch.Tensor  # [N, 100] reference mel, zeros after it (model dtype)
    cond_frames: int  # leading frames that are the reference (restored in the output)
    text_ids: torch.Tensor  # [Nt] token ids
    y: torch.Tensor  # [N, 100] current state; starts as the seeded noise
    grid: torch.Tensor  # [steps + 1] flow times (model dtype)
    cfg_strength: float  # guidance weight; 0 = conditional pass only
    on_step: Callable[[int], None] | None = None  # called with the steps done after each step
    step: int = 0  # steps done
    text_cond: torch.Tensor | None = field(default=None, repr=False)  # [N, Dt]
    text_uncond: torch.Tensor | None = field(default=None, repr=False)  # [N, Dt] when guided

    @property
    def frames(self) -> int:
        """Total frames (reference + generated)."""
        return int(self.y.shape[0])

    @property
    def steps(self) -> int:
        """Flow steps this item takes."""
        return len(self.grid) - 1

    @property
    def guided(self) -> bool:
        """Whether an unconditional row is needed."""
        return self.cfg_strength > 1e-5

    @property
    def rows(self) -> int:
        """Batch rows this item occupies (2 with guidance)."""
        return 2 if self.guided else 1

    def result(self) -> torch.Tensor:
        """The sampled mel ``[N, 100]`` with the reference frames restored."""
        out = self.y.clone()
        out[: self.cond_frames] = self.cond[: self.cond_frames]
        return out


def padded_frames(items: list[FlowItem]) -> int:
    """Rows × padded length of a batch of ``items``."""
    if not items:
        return 0
    return sum(it.rows for it in items) * max(it.frames for it in items)


@dataclass
class _Layout:
    """Padded tensors for the current members; rebuilt when membership changes.

    The state ``x`` lives here while the layout does; each item's ``y`` is a view of its row.
    """

    x: torch.Tensor  # [B, Nmax, 100] states (padding kept at zero)
    cond: torch.Tensor  # [R, Nmax, 100] (B conditional rows, then G unconditional rows)
    text: torch.Tensor  # [R, Nmax, Dt]
    mask: torch.Tensor | None  # [R, Nmax], None when every item has the same length
    packing: Packing | None  # the rows packed (with a mask, when the batcher packs)
    grids: torch.Tensor  # [B, Smax + 1] time grids, padded with their last value
    steps: torch.Tensor  # [B] steps done per item
    guided: torch.Tensor  # [G] indices of guided items
    cfg: torch.Tensor  # [G, 1, 1] their guidance weights
    warm: bool = False  # a step of this layout ran (with graphs: the warm-up before capture)
    replay: Callable[[], None] | None = None  # the captured step, once there is one


class FlowBatcher:
    """Steps any set of :class:`FlowItem` together with one model forward per step."""

    def __init__(
        self, model: DiT, graphs: StepGraphs | None = None, *, packed: bool = False
    ) -> None:
        self.model = model
        self.graphs = graphs  # None: every step runs eagerly (or compiled) from Python
        self.packed = packed  # run rows of different lengths packed, without their padding
        self.items: list[FlowItem] = []
        self._layout: _Layout | None = None

    def padded_frames(self, extra: FlowItem | None = None) -> int:
        """Rows × padded length of the batch (with ``extra`` added): what memory scales with."""
        return padded_frames(self.items if extra is None else [*self.items, extra])

    @torch.inference_mode()
    def add(self, item: FlowItem) -> None:
        """Admit an item: its text features are computed here, once."""
        ids = item.text_ids[None]
        item.text_cond = self.model.embed_text(ids, [item.frames], drop_text=False)[0]
        if item.guided:
            item.text_uncond = self.model.embed_text(ids, [item.frames], drop_text=True)[0]
        item.text_cond = item.text_cond.to(item.cond.dtype)
        if item.text_uncond is not None:
            item.text_uncond = item.text_uncond.to(item.cond.dtype)
        self.items.append(item)
        self._drop_layout()

    def remove(self, item: FlowItem) -> None:
        """Drop an item (finished or cancelled)."""
        self.items.remove(item)
        self._drop_layout()

    def _drop_layout(self) -> None:
        lay, graphs = self._layout, self.graphs
        if lay is not None and lay.replay is not None and graphs is not None:
            graphs.release()
        self._layout = None

    def _build_layout(self) -> _Layout:
        items = self.items
        device = items[0].y.device
        guided = [i for i, it in enumerate(items) if it.guided]
        cond = [it.cond for it in items] + [torch.zeros_like(items[i].cond) for i in guided]
        text = [it.text_cond for it in items] + [items[i].text_uncond for i in guided]
        lengths = [it.frames for it in items] + [items[i].frames for i in guided]
        longest = max(it.steps for it in items)
        x = pad_sequence([it.y for it in items], batch_first=True)
        for i, it in enumerate(items):
            it.y = x[i, : it.frames]
        mask = length_mask(lengths, device)
        return _Layout(
            x=x,
            cond=pad_sequence(cond, batch_first=True),
            text=pad_sequence([t for t in text if t is not None], batch_first=True),
            mask=mask,
            packing=pack_lengths(lengths, device) if self.packed and mask is not None else None,
            grids=torch.stack(
                [F.pad(it.grid, (0, longest - it.steps), value=float(it.grid[-1])) for it in items]
            ),
            steps=torch.tensor([it.step for it in items], device=device),
            guided=torch.tensor(guided, dtype=torch.long, device=device),
            cfg=torch.tensor([items[i].cfg_strength for i in guided], device=device).view(-1, 1, 1),
        )

    @torch.inference_mode()
    def step(self) -> list[FlowItem]:
        """One flow step for every item; returns (and removes) the items that finished."""
        if not self.items:
            return []
        if self._layout is None:
            self._layout = self._build_layout()
        self._run(self._layout)
        items = self.items
        for it in items:
            it.step += 1
            if it.on_step is not None:
                it.on_step(it.step)
        finished = [it for it in items if it.step >= it.steps]
        for it in finished:
            self.remove(it)
        return finished

    def _run(self, lay: _Layout) -> None:
        """One step of ``lay``: eagerly, or warmed up, captured and replayed with graphs."""
        advance = partial(self._advance, lay)
        graphs = self.graphs
        if graphs is None or not graphs.enabled:
            advance()
            return
        if lay.replay is None and lay.warm and self._steps_left() >= MIN_REPLAYS:
            lay.replay = graphs.capture(advance)
        if lay.replay is not None:
            lay.replay()
        elif lay.warm:
            advance()
        else:
            graphs.warm_up(advance)
            lay.warm = True

    def _steps_left(self) -> int:
        """Steps until the first member finishes (this one included)."""
        return min(it.steps - it.step for it in self.items)

    def _advance(self, lay: _Layout) -> None:
        """The step on the layout's tensors alone, in place (no host reads: it is captured)."""
        t0 = lay.grids.gather(1, lay.steps[:, None])[:, 0]  # [B] each item's own time
        t1 = lay.grids.gather(1, lay.steps[:, None] + 1)[:, 0]
        g = lay.guided
        flow = self.model(
            torch.cat((lay.x, lay.x[g])),
            lay.cond,
            lay.text,
            torch.cat((t0, t0[g])),
            lay.mask,
            lay.packing,
        )
        # in place: items' y are views of these rows
        lay.x.copy_(sampler.flow_step(lay.x, flow, g, lay.cfg, t1 - t0))
        if lay.mask is not None:
            lay.x.masked_fill_(~lay.mask[: lay.x.shape[0], :, None], 0.0)
        lay.steps += 1
