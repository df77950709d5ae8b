"""The pack's node kinds: the one table every other name of a node is made from.

A kind ("text_to_video", "effect", …) is what the code calls a node. Its ComfyUI node id is public
API (saved workflows store it) and never changes. Generator kinds have a workflow of the capability
spec (which models they list); motion kinds pick one motion setting for a generator's motion input.
The widgets of a kind are `nodes.requests.widgets.widgets_for(kind)`; the task a generator kind would send is
`nodes.requests.draft.draft(kind, values)`. The spec route serves this table; web/ reads it from there.
Plain data, no imports from the rest of the pack.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional


@dataclass(frozen=True)
class NodeKind:
    kind: str
    node_id: str                          # public API: saved workflows store it
    display_name: str
    description: str
    workflow: Optional[str] = None        # generators: the spec workflow whose models the node lists
    motion_setting: Optional[str] = None  # motion nodes: the setting they pick
    counted: bool = False                 # takes `count`: that many videos at once, seeds seed, seed+1, …

    def to_json(self) -> dict:
        return asdict(self)


KINDS: tuple[NodeKind, ...] = (
    NodeKind("text_to_video", "RunwarePixVerseTextToVideo", "PixVerse Text to Video (Runware)",
             "Generate a video from a prompt with PixVerse, through Runware (billed per video).",
             workflow="text-to-video", counted=True),
    NodeKind("image_to_video", "RunwarePixVerseImageToVideo", "PixVerse Image to Video (Runware)",
             "Animate a first frame (optionally towards a last frame) with PixVerse, through Runware.",
             workflow="image-to-video", counted=True),
    NodeKind("lipsync", "RunwarePixVerseLipSync", "PixVerse LipSync (Runware)",
             "Lip-sync a video to an audio clip or to text-to-speech with PixVerse, through Runware.",
             workflow="video-to-video"),
    NodeKind("effect", "RunwarePixVerseEffect", "PixVerse Effect",
             "Pick an effect for a generator's motion input.", motion_setting="effect"),
    NodeKind("camera", "RunwarePixVerseCamera", "PixVerse Camera",
             "Pick a camera movement for a generator's motion input.", motion_setting="camera_movement"),
    NodeKind("recover", "RunwarePixVerseRecover", "PixVerse Recover (Runware)",
             "Fetch the video of an earlier PixVerse task by its taskUUID: no new task, no new charge. "
             "Served from the pack's job ledger when the video is already here."),
    NodeKind("modify", "RunwarePixVerseModify", "PixVerse Modify (Runware)",
             "Change a video as a prompt says (optionally following a reference image) with PixVerse Modify, "
             "through Runware.", workflow="modify", counted=True),
)

BY_KIND: dict[str, NodeKind] = {k.kind: k for k in KINDS}
BY_NODE_ID: dict[str, NodeKind] = {k.node_id: k for k in KINDS}

NODE_IDS: dict[str, str] = {k.kind: k.node_id for k in KINDS}
NODE_WORKFLOWS: dict[str, str] = {k.kind: k.workflow for k in KINDS if k.workflow}   # the generators
MOTION_NODES: dict[str, str] = {k.kind: k.motion_setting for k in KINDS if k.motion_setting}
COUNTED: frozenset[str] = frozenset(k.kind for k in KINDS if k.counted)


def workflow_of(kind: str) -> str:
    return NODE_WORKFLOWS[kind]


def kind_of(node: str) -> Optional[str]:
    """A node id or a kind → the kind; None when it is neither."""
    if node in BY_KIND:
        return node
    found = BY_NODE_ID.get(node)
    return found.kind if found else None
