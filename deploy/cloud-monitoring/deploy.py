#!/usr/bin/env python3
"""Deploys the generated alert policies (deploy/cloud-monitoring/policies/*.yaml) to a project.

  python3 deploy/cloud-monitoring/deploy.py --project P --runbook-base URL \\
      --channels projects/P/notificationChannels/123[,...] [--prune] [--dry-run]

Each policy gets the notification channels and the runbook base URL (what
@RUNBOOK_BASE_URL@ stands for, e.g. https://github.com/ORG/pathwatch/blob/main), is checked
against deploy/schemas/alert-policy.schema.json, and is then created, or updated in place when
a policy with the same display name exists (so a re-run does not duplicate). --prune deletes
policies labelled app=pathwatch that no alert generates any more. --dry-run prints the gcloud
commands and writes the filled-in policies to --render-dir instead of calling gcloud.
Needs gcloud (authenticated; roles/monitoring.alertPolicyEditor) unless --dry-run.
"""
import argparse, glob, json, os, re, shlex, subprocess, sys, tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import validate  # noqa: E402  (deploy/validate.py)

PLACEHOLDER = "@RUNBOOK_BASE_URL@"


def channel_names(project, spec):
    """'123,projects/p/notificationChannels/456' -> full resource names."""
    out = []
    for c in filter(None, (s.strip() for s in spec.split(","))):
        out.append(c if c.startswith("projects/") else f"projects/{project}/notificationChannels/{c}")
    return out


def fill(policy, base, channels):
    text = json.dumps(policy).replace(PLACEHOLDER, base.rstrip("/"))
    filled = json.loads(text)
    filled["notificationChannels"] = channels
    return filled


def gcloud(args, dry, capture=False):
    cmd = ["gcloud"] + args
    if dry:
        print(" ".join(shlex.quote(a) for a in cmd))
        return ""
    res = subprocess.run(cmd, check=True, text=True, capture_output=capture)
    return res.stdout if capture else ""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--project", required=True)
    ap.add_argument("--runbook-base", required=True, help="URL that docs/src/runbook.md is under")
    ap.add_argument("--channels", default="", help="notification channels, comma-separated (IDs or full names)")
    ap.add_argument("--policies", default=os.path.join(HERE, "policies"))
    ap.add_argument("--prune", action="store_true")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--render-dir", help="where the filled-in policies go (default: a temp dir)")
    args = ap.parse_args(argv)

    if not re.match(r"^https?://", args.runbook_base):
        print(f"deploy: --runbook-base must be an http(s) URL, not '{args.runbook_base}'", file=sys.stderr)
        return 2
    channels = channel_names(args.project, args.channels)
    if not channels:
        print("deploy: warning: no --channels; the policies open incidents but notify nobody", file=sys.stderr)
    files = sorted(glob.glob(os.path.join(args.policies, "*.yaml")))
    if not files:
        print(f"deploy: no policies in {args.policies}", file=sys.stderr)
        return 2
    out_dir = args.render_dir or tempfile.mkdtemp(prefix="pathwatch-policies-")
    os.makedirs(out_dir, exist_ok=True)

    rendered, bad = [], False
    for path in files:
        with open(path) as f:
            policy = fill(yaml.safe_load(f), args.runbook_base, channels)
        errs = validate.alert_policy(policy)
        if PLACEHOLDER in json.dumps(policy):
            errs.append(f"{PLACEHOLDER} left after substitution")
        for e in errs:
            print(f"{path}: {e}", file=sys.stderr)
        bad |= bool(errs)
        out = os.path.join(out_dir, os.path.basename(path)[: -len(".yaml")] + ".json")
        with open(out, "w") as f:
            json.dump(policy, f, indent=2)
        rendered.append((policy["displayName"], out))
    if bad:
        return 1

    proj = [f"--project={args.project}"]
    existing = {}
    if not args.dry_run:
        listed = gcloud(["monitoring", "policies", "list", "--filter=userLabels.app=pathwatch",
                         "--format=json(name,displayName)"] + proj, False, capture=True)
        for p in json.loads(listed or "[]"):
            existing.setdefault(p["displayName"], []).append(p["name"])
    for display, path in rendered:
        names = existing.get(display, [])
        if len(names) > 1:
            print(f"deploy: {len(names)} policies are named {display}: delete all but one", file=sys.stderr)
            return 1
        if names:
            gcloud(["monitoring", "policies", "update", names[0], f"--policy-from-file={path}"] + proj, args.dry_run)
        else:
            gcloud(["monitoring", "policies", "create", f"--policy-from-file={path}"] + proj, args.dry_run)
    wanted = {d for d, _ in rendered}
    for display, names in sorted(existing.items()):
        if display not in wanted:
            if args.prune:
                for n in names:
                    gcloud(["monitoring", "policies", "delete", n, "--quiet"] + proj, args.dry_run)
            else:
                print(f"deploy: {display} is no longer generated (re-run with --prune to delete it)", file=sys.stderr)
    print(f"deploy: {len(rendered)} policies {'rendered to ' + out_dir if args.dry_run else 'deployed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
