#!/usr/bin/env bash
# Installs the Debian packages Plinth needs that are not installed yet.
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail
packages=(
  build-essential cmake
  antlr4 default-jre-headless libantlr4-runtime-dev   # parser generator (4.7 tool) + C++ runtime (4.9)
  nlohmann-json3-dev libssl-dev libsqlite3-dev        # JSON output, hashing, state store
  libgtest-dev                                        # unit and golden tests
  clang                                               # libFuzzer target (tests only)
  llvm-14-dev                                         # rule JIT (compiler/rules, ORC LLJIT)
  libcurl4-openssl-dev libxml2-dev zlib1g-dev         # S3 client (SigV4 over HTTP, XML), archive tier
  restic                                              # bucket backups (docs/storage.md)
  libboost1.81-dev                                    # process layer (Boost.Process v2, runtime/process)
  libre2-dev                                          # linear-time regex (regex, regexall, replace, policies)
  libcli11-dev                                        # command-line parsing (cli/)
  libreadline-dev                                     # line editing and history in plinth console
  libpq-dev postgresql                                # the PostgreSQL state backend (libpq); a server for its tests (tests/fixtures/postgres.sh)
  libgit2-dev git                                     # configurations from git (runtime/git; git makes the tests' repositories)
  python3                                             # the example provider in another process (tests)
  slurm-wlm munge                                     # Slurm boundary tests: slurmctld, slurmd, sbatch (tests/fixtures/slurm-cluster.sh)
  haproxy                                             # load balancers in front of services (docs/load-balancing.md)
  wrk prometheus                                      # controller tests: load during drills, a real Prometheus scraping /metrics
  prometheus-alertmanager                             # alerts sent to a real Alertmanager (scripts/alertmanager-test.sh)
  iproute2                                            # regions in network namespaces (ip netns, veth; docs/services.md)
  tzdata                                              # maintenance windows in a time zone (docs/automation.md)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm, for the VS Code extension's build and tests only
# (scripts/vscode-extension-test.sh): Debian's, unless a node is already on PATH
# (a NodeSource nodejs bundles its own npm, which Debian's npm would conflict with).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
