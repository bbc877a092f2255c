#!/usr/bin/env bash
# The CI must run exactly the test command the README gives new users, so the two cannot drift:
# the README's command is the first `scripts/test...` line inside a fenced code block, and
# .ci/run must `exec` that same command. The scripts must also be executable.
set -euo pipefail
root="${1:?usage: $0 REPO_ROOT}"

readme_command="$(awk '/^```/ { fenced = !fenced; next }
  fenced && /^scripts\/test([ \t]|$)/ { sub(/[ \t]*#.*$/, ""); print; exit }' "$root/README.md")"
ci_command="$(sed -n 's/^exec[ \t]\{1,\}//p' "$root/.ci/run" | sed 's/[ \t]*#.*$//' | head -n 1)"

status=0
if [ -z "$readme_command" ]; then
  echo "FAIL: README.md has no scripts/test command in a code block"
  status=1
fi
if [ "$readme_command" != "$ci_command" ]; then
  echo "FAIL: README says '$readme_command' but .ci/run runs '$ci_command'"
  status=1
fi
for script in .ci/run scripts/test scripts/start scripts/install-deps; do
  if [ ! -x "$root/$script" ]; then
    echo "FAIL: $script is not executable"
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "README and .ci/run both run: $ci_command"
exit "$status"
