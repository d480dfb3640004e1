"""Roll a policy out in the sim and write a report with success and its interval.

    qtransformer eval --policy runs/demo/policy --task pick_place --episodes 50 \\
        --report runs/demo/eval.json --video runs/demo/eval.mp4
    qtransformer eval --baseline expert --task all --episodes 20 --report expert.json

The policy is a tf_agents PolicySaver export (loaded with `tf.saved_model.load`);
environments are stepped in lockstep with one batched policy call per control step.
The report (JSON, written atomically) holds success_rate, success_ci95 (Wilson),
mean_return, mean_episode_length, episodes, policy, seed, task, and per_task when
several tasks are evaluated.
"""

from __future__ import annotations

import argparse

from qtransformer.commands import flags
from qtransformer.eval import external_eval


def add_arguments(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--policy", metavar="DIR", help="exported policy (WORKDIR/policy of train)")
    who.add_argument("--baseline", choices=("expert", "random"), help="evaluate a baseline instead")
    parser.add_argument(
        "--task", default="pick_place", help="task, comma list, or 'all' (default: pick_place)"
    )
    parser.add_argument(
        "--episodes", type=flags.positive_int, default=50, help="episodes per task (default: 50)"
    )
    parser.add_argument(
        "--seed", type=flags.seed, default=0, help="seed of the episodes' initial states"
    )
    parser.add_argument(
        "--report", metavar="FILE.json", help="where to write the JSON report (default: none)"
    )
    parser.add_argument(
        "--video", metavar="FILE.mp4|gif", help="video of the first episodes (default: none)"
    )
    parser.add_argument(
        "--video-episodes",
        type=flags.positive_int,
        default=3,
        help="episodes per task in the video (default: 3)",
    )
    parser.add_argument(
        "--batch-size",
        type=flags.positive_int,
        default=None,
        help="environments stepped in lockstep (default: min(episodes, 64); 1 = unbatched)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    external_eval.add_arguments(parser)  # --env and its flags (eval/external.py)


def run(args: argparse.Namespace) -> int:
    from qtransformer.eval import metrics, rollout
    from qtransformer.eval.stalls import format_stalls

    # Outputs never land in (or replace) the policy being evaluated.
    flags.check_disjoint(
        {"--report": args.report, "--video": args.video}, {"--policy": args.policy}
    )
    if getattr(args, "env", None):  # an environment we did not write
        return external_eval.run(args)
    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    if args.video and not args.video.endswith((".mp4", ".gif")):
        raise ValueError(f"--video {args.video}: the file must end in .mp4 or .gif")
    tasks = rollout.resolve_tasks(args.task)
    policy = args.baseline or rollout.load_policy(args.policy)
    report = rollout.evaluate(
        policy,
        tasks,
        args.episodes,
        args.seed,
        video_path=args.video,
        video_episodes=args.video_episodes,
        progress=not args.no_progress,
        batch_size=args.batch_size,
        policy_name=args.baseline or args.policy,
    )
    print(metrics.format_table(metrics.table_rows(report, report["policy"])))
    for task_report in report.get("per_task", {"": report}).values():
        if text := format_stalls(task_report):
            print(f"{task_report['task']} {text}")
    if args.report:
        metrics.write_report(report, args.report)
        print(f"report: {args.report}")
    if args.video:
        print(f"video:  {args.video}")
    return 0
