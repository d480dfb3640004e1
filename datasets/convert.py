"""Convert demos recorded elsewhere (npz, robomimic hdf5, RLDS) to our RLDS contract.

Every episode is read and validated (consistent lengths, finite numbers, actions inside
--action-low/--action-high unless --clip-actions, one is_first and one is_last for RLDS input)
before anything is written; a bad episode stops the conversion with an error naming the file,
episode and key, unless --skip-bad, which converts the rest and lists what was skipped. The
input is only read. The output is written atomically (see datasets/rlds_io.py).

Input layouts (T = transitions in the episode):

npz: --input is a folder of `*.npz` files (sorted by name), one episode each:
    actions             float [T, D]
    rewards             float [T]        reward after each action
    observations        float [T+1, S] or [T, S]   -> observation/state
      or obs/<key>      [T+1, ...] or [T, ...]     flattened and concatenated (sorted keys, or
                                                   --state-keys) into state; a uint8 [.., H, W, 3]
                                                   key named `image` (or --image-key) -> image
    next_observations   [T, S] (or next_obs/<key>), optional: its last row is o_T when the
                        observations have T rows; without it o_T repeats o_{T-1}
    terminals           bool [T], optional: only the last may be True (success). Default: the
                        episode is terminal iff its last reward > 0
    language_instruction, task   scalar strings, optional (default --instruction / --task)
  np.savez("ep0.npz", actions=a, rewards=r, observations=o, language_instruction="lift it")

hdf5: --input is a robomimic file: data/demo_<k>/{obs/<key>, next_obs/<key> (optional),
  actions [T, D], rewards [T], dones [T]} (demos sorted by number). --state-keys a,b,c picks the
  obs keys concatenated into state (default: every non-image key, sorted); --image-key one
  uint8 [T, H, W, 3] key as the image. o_T = next_obs/<key>[-1] (else o_{T-1} repeated);
  terminal = dones[-1]; a demo attribute `language_instruction` overrides --instruction.

rlds: --input is a TFDS RLDS directory of T+1 steps per episode (step T: final observation).
  Rewards in either alignment (--reward-alignment, default auto = detected and reported):
  `step` (RLDS: a step's reward follows its own action, the is_last step has reward 0) or
  `next` (envlogger / dm_env: a step's reward follows the previous action, the is_last step
  carries the last action's reward). Termination: is_terminal on the last step, else a 0
  discount there, else last reward > 0. Keys are looked up under our names (observation/state,
  observation/image, action, reward, is_first, is_last, is_terminal, language_instruction,
  episode_metadata/{task,success,source}); --map OURS=THEIRS renames, e.g.
  --map observation/state=observation/robot_state
  --map language_instruction=observation/natural_language_instruction

Conventions (all formats; datasets/conventions.py): --reward keep (as recorded: dense,
multi-step, negative) or sparse (1 on the last transition of a successful episode, else 0);
--episode-end data (the input's terminal flags), success (successful episodes terminal, the
rest time-outs) or timeout (all time-outs: bootstrap from the final observation). The
summary reports the alignment, terminal vs time-out counts, reward and return ranges, and
the value range `train` will use (also stored in metadata.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qtransformer.commands import output_lock
from qtransformer.commands.flags import check_disjoint

FORMATS = ("npz", "hdf5", "rlds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS, help="input format")
    parser.add_argument("--input", required=True, help="npz folder, hdf5 file or RLDS directory")
    parser.add_argument("--out", required=True, help="output RLDS dataset directory")
    parser.add_argument("--task", default="converted", help="task name when the input has none")
    parser.add_argument("--instruction", default="", help="language instruction when none given")
    parser.add_argument("--action-low", default="-1", help="scalar or comma list (default -1)")
    parser.add_argument("--action-high", default="1", help="scalar or comma list (default 1)")
    parser.add_argument("--clip-actions", action="store_true", help="clip instead of rejecting")
    parser.add_argument("--skip-bad", action="store_true", help="skip bad episodes, report them")
    parser.add_argument("--state-keys", default="", help="obs keys concatenated into state")
    parser.add_argument(
        "--image-key", default=None, help="obs key stored as observation/image (default: none)"
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OURS=THEIRS",
        help="rlds: take our key path from their key path (repeatable)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    add_convention_arguments(parser)


def add_convention_arguments(parser: argparse.ArgumentParser) -> None:
    """--reward-alignment, --reward, --episode-end (datasets/conventions.py)."""
    from qtransformer.datasets import conventions as c

    parser.add_argument(
        "--reward-alignment",
        choices=c.ALIGNMENTS,
        default="auto",
        help="rlds: 'step' = a step's reward follows its own action (RLDS; is_last step has "
        "reward 0); 'next' = it follows the previous action (envlogger: reward on is_last); "
        "'auto' detects it from the data and reports it (default: auto)",
    )
    parser.add_argument(
        "--reward",
        choices=c.REWARD_MODES,
        default="keep",
        help="'keep' the rewards as recorded, or 'sparse': 1 on the last transition of a "
        "successful episode, 0 elsewhere (default: keep)",
    )
    parser.add_argument(
        "--episode-end",
        choices=c.EPISODE_ENDS,
        default="data",
        help="what ends an episode: 'data' = the input's terminal flags (is_terminal, dones, "
        "terminals); 'success' = successful episodes terminate, others time out; 'timeout' = "
        "every episode is a time-out (default: data)",
    )


def _floats(text: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError as e:
        raise ValueError(f"{flag} must be a number or comma list, got {text!r}") from e


def _mapping(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        ours, sep, theirs = item.partition("=")
        if not sep or not ours or not theirs:
            raise ValueError(f"--map expects OURS=THEIRS, got {item!r}")
        out[ours.strip("/")] = theirs.strip("/")
    return out


@output_lock.releasing  # the lock of out_dir, taken below, ends with the call
def convert(
    fmt: str,
    input_path,
    out_dir,
    *,
    task: str = "converted",
    instruction: str = "",
    action_low=(-1.0,),
    action_high=(1.0,),
    clip_actions: bool = False,
    skip_bad: bool = False,
    state_keys=None,
    image_key=None,
    mapping=None,
    overwrite: bool = False,
    reward_alignment: str = "auto",
    reward_mode: str = "keep",
    episode_end: str = "data",
) -> dict:
    """Validate all episodes of `input_path`, then write them to `out_dir`.

    Returns {"path", "episodes", "transitions", "skipped": [error messages], "conventions":
    {reward_alignment, alignment_reason, reward, episode_end} and the metadata's reward
    statistics (reward_range, return_range, value_range, terminal/timeout_episodes)}.
    """
    import dataclasses

    from qtransformer.datasets import conventions, rlds_io, sources

    src = Path(input_path)
    if not src.exists():
        raise FileNotFoundError(f"--input {src} does not exist")
    check_disjoint({"--out": out_dir}, {"--input": src})  # --overwrite never replaces input
    rlds_io.check_output_dir(out_dir, overwrite)
    rlds_io.lock_output(out_dir)  # one writer, refused before the input is read
    if fmt == "npz":
        raws = sources.read_npz(src)
    elif fmt == "hdf5":
        raws = sources.read_hdf5(src)
    elif fmt == "rlds":
        raws = sources.read_rlds(src, mapping or {})
    else:
        raise ValueError(f"--format must be one of {FORMATS}, got {fmt!r}")
    alignment, reason = None, ""
    if fmt == "rlds":
        raws, alignment, reason = conventions.align_raw_episodes(raws, reward_alignment)
    low, high = list(action_low), list(action_high)
    episodes, skipped = [], []
    for raw in _guarded(raws, src, fmt):
        try:
            episode = sources.to_episode(
                raw,
                low,
                high,
                clip=clip_actions,
                state_keys=state_keys,
                image_key=image_key,
                task=task,
                instruction=instruction,
            )
            rewards, terminal, success = conventions.apply_conventions(
                episode.rewards, episode.terminal, raw.success,
                reward_mode=reward_mode, episode_end=episode_end,
            )  # fmt: skip
            episode = dataclasses.replace(
                episode, rewards=rewards, terminal=terminal, success=success
            )
            if episodes and episode.states.shape[1] != episodes[0].states.shape[1]:
                raise sources.BadEpisode(
                    raw.file,
                    raw.name,
                    "observations",
                    f"state size {episode.states.shape[1]} != "
                    f"{episodes[0].states.shape[1]} of earlier episodes",
                )
            if episodes and episode.actions.shape[1] != episodes[0].actions.shape[1]:
                raise sources.BadEpisode(
                    raw.file, raw.name, "actions", "action size differs from earlier episodes"
                )
        except sources.BadEpisode as e:
            if not skip_bad:
                raise
            skipped.append(str(e))
            continue
        episodes.append(episode)
    if not episodes:
        raise ValueError(
            f"no valid episodes in {src}" + (f"; skipped {len(skipped)}" if skipped else "")
        )
    d = episodes[0].actions.shape[1]
    bounds = [
        _broadcast(b, d, flag) for b, flag in ((low, "--action-low"), (high, "--action-high"))
    ]
    path = rlds_io.write_dataset(
        out_dir,
        episodes,
        action_low=bounds[0],
        action_high=bounds[1],
        overwrite=overwrite,
        description=f"converted from {fmt}: {src}",
    )
    return {
        "path": str(path),
        "episodes": len(episodes),
        "transitions": sum(e.length for e in episodes),
        "skipped": skipped,
        "conventions": {
            "reward_alignment": alignment,
            "alignment_reason": reason,
            "reward": reward_mode,
            "episode_end": episode_end,
        },
        **rlds_io.read_meta(path).reward_stats,
    }


def _broadcast(values: list[float], dims: int, flag: str) -> list[float]:
    if len(values) == 1:
        return values * dims
    if len(values) != dims:
        raise ValueError(f"{flag} has {len(values)} values, the actions have {dims} dimensions")
    return values


def run(args: argparse.Namespace) -> int:
    report = convert(
        args.format,
        args.input,
        args.out,
        task=args.task,
        instruction=args.instruction,
        action_low=_floats(args.action_low, "--action-low"),
        action_high=_floats(args.action_high, "--action-high"),
        clip_actions=args.clip_actions,
        skip_bad=args.skip_bad,
        state_keys=[k for k in args.state_keys.split(",") if k] or None,
        image_key=args.image_key,
        mapping=_mapping(args.map),
        overwrite=args.overwrite,
        reward_alignment=args.reward_alignment,
        reward_mode=args.reward,
        episode_end=args.episode_end,
    )
    print(
        f"converted {report['episodes']} episodes ({report['transitions']} transitions) "
        f"-> {report['path']}"
    )
    print(conventions_summary(report))
    for message in report["skipped"]:
        print(f"skipped: {message}")
    if report["skipped"]:
        print(f"skipped {len(report['skipped'])} bad episodes")
    return 0


def conventions_summary(report: dict) -> str:
    """Lines of the convert summary about reward alignment, episode ends and value range."""
    conv, lines = report["conventions"], []
    if conv["reward_alignment"]:
        lines.append(f"reward alignment: {conv['reward_alignment']} ({conv['alignment_reason']})")
    if "reward_range" in report:
        lo, hi = report["reward_range"]
        glo, ghi = report["return_range"]
        vlo, vhi = report["value_range"]
        lines += [
            f"rewards: {conv['reward']}, in [{lo:g}, {hi:g}]; episodes: "
            f"{report['terminal_episodes']} terminal, {report['timeout_episodes']} time-out "
            f"(--episode-end {conv['episode_end']})",
            f"returns at gamma {report['return_gamma']:g}: [{glo:.4g}, {ghi:.4g}]; value range "
            f"for train: [{vlo:.4g}, {vhi:.4g}]"
            + (
                " (time-outs with rewards: values bootstrap past the returns)"
                if report["truncated_reward"]
                else ""
            ),
        ]
        if report["timeout_episodes"] == 0 and report["episodes"] > 1 and lo >= 0:
            lines.append(
                "note: every episode ends terminal; if some ended by a time limit, pass "
                "--episode-end success or timeout"
            )
    return "\n".join(lines)


def _guarded(raws, src: Path, fmt: str):
    """Yield from a reader, turning a library's error on a bad file into one line naming it."""
    errors: tuple = (OSError, EOFError)
    if fmt == "rlds":
        import tensorflow as tf

        errors += (tf.errors.OpError,)
    try:
        yield from raws
    except errors as e:
        text = (getattr(e, "message", None) or str(e)).strip().splitlines()
        raise ValueError(
            f"--input {src}: cannot read it as {fmt} ({text[0] if text else type(e).__name__})"
        ) from e
