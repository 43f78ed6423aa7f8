#!/usr/bin/env bash
# Drives plinth-provider-textfile over a pipe with JSON-RPC lines (docs/providers/protocol.md) and checks the
# answers with python3. Exits non-zero on the first failure.
#
#   examples/provider-python/test_protocol.sh
#
# `a && b || fail` is meant (fail when either fails); single-quoted JSON holds literal `$` tags:
# shellcheck disable=SC2015,SC2016
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROVIDER="$HERE/plinth-provider-textfile"
TOKEN="tok-s3cr3t-7f2a"
SECRET="hidden-s3cr3t-91c4"
WORK="$(mktemp -d)"
HANG_PID=
trap 'if [ -n "$HANG_PID" ]; then kill "$HANG_PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT
cd "$WORK"

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok   $*"; }

# --- one provider process, as a coprocess -----------------------------------------------------------------
start() {
  coproc PROV { env -i "$@" "$PROVIDER" 2>>"$WORK/stderr"; }
  NEXT_ID=0
}

# call METHOD PARAMS-JSON: sends one request, reads its response line into RESP.
call() {
  NEXT_ID=$((NEXT_ID + 1))
  printf '{"jsonrpc":"2.0","id":%d,"method":"%s","params":%s}\n' "$NEXT_ID" "$1" "$2" >&"${PROV[1]}"
  IFS= read -r -t 10 RESP <&"${PROV[0]}" || fail "no response to $1"
  printf '%s\n' "$RESP" >>"$WORK/responses"
}

# check DESCRIPTION PYTHON-EXPR: evaluates EXPR with r = the last response (parsed), res = r["result"],
# err = r["error"]; the response must carry the request's id.
check() {
  python3 - "$RESP" "$NEXT_ID" "$2" <<'EOF' || fail "$1: got $RESP"
import json, sys
r = json.loads(sys.argv[1])
res, err = r.get("result"), r.get("error")
ok = r.get("jsonrpc") == "2.0" and r.get("id") == int(sys.argv[2]) and ("result" in r) != ("error" in r)
sys.exit(0 if ok and eval("(" + sys.argv[3] + ")") else 1)
EOF
  pass "$1"
}

# Shorthands for the error checks.
NONRETRYABLE='err["code"] == 1 and err["data"]["retryable"] is False'
RETRYABLE='err["code"] == 1 and err["data"]["retryable"] is True'

# A full attribute map of textfile_file (JSON), from path, content, sensitive_content JSON, mode.
attrs() {
  printf '{"id":{"$unknown":"string"},"path":"%s","content":"%s","sensitive_content":%s,"mode":"%s",' "$1" "$2" "$3" "$4"
  printf '"sha256":{"$unknown":"string"},"size":{"$unknown":"size"}}'
}
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

start PATH="$PATH"

# --- schemas and configure --------------------------------------------------------------------------------
call schemas '{"protocol_version":1}'
check "schemas: version, name, provider config" 'res["protocol_version"] == 1 and res["name"] == "textfile"
  and {a["name"]: a["mode"] for a in res["provider"]["body"]["attributes"]} == {"root": "required", "token": "optional"}
  and [a["sensitive"] for a in res["provider"]["body"]["attributes"] if a["name"] == "token"] == [True]'
check "schemas: textfile_file attributes" '[t["type"] for t in res["resources"]] == ["textfile_file"]
  and {a["name"]: a["mode"] for a in res["resources"][0]["body"]["attributes"]} == {"id": "computed",
  "path": "required", "content": "required", "sensitive_content": "optional", "mode": "optional",
  "sha256": "computed", "size": "computed"}
  and all(a["type"] == ("size" if a["name"] == "size" else "string") for a in res["resources"][0]["body"]["attributes"])
  and [a.get("force_new") for a in res["resources"][0]["body"]["attributes"] if a["name"] == "path"] == [True]'

call configure "{\"config\":{\"root\":\"./out\",\"token\":{\"\$sensitive\":\"invalid-$TOKEN\"}}}"
check "configure: an invalid token fails, non-retryable, without the token" \
  "$NONRETRYABLE and \"$TOKEN\" not in err[\"message\"]"

call create "{\"type\":\"textfile_file\",\"planned\":$(attrs a.txt x null 0644)}"
check "create before a successful configure fails" "$NONRETRYABLE"

call configure "{\"config\":{\"root\":\"./out\",\"token\":{\"\$sensitive\":\"$TOKEN\"}}}"
check "configure" 'res == {}'
[ -d out ] || fail "configure did not create the root"

# --- validate ---------------------------------------------------------------------------------------------
call validate "{\"type\":\"textfile_file\",\"config\":$(attrs ../x x null 0644)}"
check "validate: '../x' is refused" 'len(res["errors"]) == 1 and "'"'"'..'"'"'" in res["errors"][0]'
call validate "{\"type\":\"textfile_file\",\"config\":$(attrs /etc/passwd x null 0644)}"
check "validate: an absolute path is refused" 'len(res["errors"]) == 1 and "absolute" in res["errors"][0]'
ln -s /tmp out/escape
call validate "{\"type\":\"textfile_file\",\"config\":$(attrs escape/x x null 0644)}"
check "validate: a symlink out of the root is refused" 'len(res["errors"]) == 1 and "symlink" in res["errors"][0]'
call create "{\"type\":\"textfile_file\",\"planned\":$(attrs escape/x x null 0644)}"
check "create: a symlink out of the root is refused" "$NONRETRYABLE and 'symlink' in err['message']"
call create "{\"type\":\"textfile_file\",\"planned\":$(attrs ../x x null 0644)}"
check "create: '../x' is refused" "$NONRETRYABLE"
[ ! -e x ] || fail "create wrote outside the root"
call validate "{\"type\":\"textfile_file\",\"config\":$(attrs dir/ok.txt x null 0644)}"
check "validate: a good path" 'res == {"errors": []}'
call validate '{"type":"textfile_file","config":{"path":{"$unknown":"string"},"content":"x"}}'
check "validate: an unknown path is not an error" 'res == {"errors": []}'

# --- plan_change ------------------------------------------------------------------------------------------
call plan_change "{\"type\":\"textfile_file\",\"prior\":null,\"config\":$(attrs motd.txt 'hello\n' null 0644),\"unset\":[]}"
check "plan_change: sha256 and size known at plan time" "res['replace_because'] == [] and res['planned'] == {
  'id': 'motd.txt', 'path': 'motd.txt', 'content': 'hello\n', 'sensitive_content': None, 'mode': '0644',
  'sha256': '$(sha $'hello\n')', 'size': {'\$size': 6}}"
CONFIG="$(attrs motd.txt CONTENT null 0644)"
CONFIG="${CONFIG/'"CONTENT"'/'{"$unknown":"string"}'}" # content known only after apply
call plan_change "{\"type\":\"textfile_file\",\"prior\":null,\"config\":$CONFIG,\"unset\":[]}"
check "plan_change: unknown content -> unknown sha256" 'res["planned"]["sha256"] == {"$unknown": "string"}
  and res["planned"]["content"] == {"$unknown": "string"} and res["planned"]["size"] == {"$unknown": "size"}'
PRIOR='{"id":"old.txt","path":"old.txt","content":"x","sensitive_content":null,"mode":"0644","sha256":"","size":{"$size":1}}'
call plan_change "{\"type\":\"textfile_file\",\"prior\":$PRIOR,\"config\":$(attrs new.txt x null 0644),\"unset\":[]}"
check "plan_change: a new path replaces" 'res["replace_because"] == ["path"]'
[ ! -e out/motd.txt ] && [ ! -e out/new.txt ] || fail "plan_change changed something"

# --- create / read / update / delete ----------------------------------------------------------------------
call create "{\"type\":\"textfile_file\",\"planned\":$(attrs motd.txt 'hello\n' "{\"\$sensitive\":\"$SECRET\"}" 0600)}"
check "create" "res['id'] == 'motd.txt' and res['attributes']['sensitive_content'] == {'\$sensitive': '$SECRET'}
  and res['attributes']['sha256'] == {'\$sensitive': '$(sha $'hello\n'"$SECRET")'}
  and res['attributes']['size'] == {'\$size': $((6 + ${#SECRET}))} and res['attributes']['mode'] == '0600'"
[ "$(cat out/motd.txt)" = $'hello\n'"$SECRET" ] || fail "create: wrong file content"
[ "$(stat -c %a out/motd.txt)" = 600 ] || fail "create: wrong mode"
CREATED="$RESP"
PRIOR="$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["result"]["attributes"]))' "$CREATED")"

call create "{\"type\":\"textfile_file\",\"planned\":$(attrs motd.txt 'other' "{\"\$sensitive\":\"$SECRET\"}" 0644)}"
check "create: an existing file is not adopted" "$NONRETRYABLE and 'already exists' in err['message']
  and '$SECRET' not in err['message']"
[ "$(cat out/motd.txt)" = $'hello\n'"$SECRET" ] || fail "create overwrote an existing file"

call read "{\"type\":\"textfile_file\",\"id\":\"motd.txt\",\"prior\":$PRIOR}"
python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1])["result"] != json.loads(sys.argv[2])["result"])' \
  "$RESP" "$CREATED" || fail "read differs from create: $RESP"
pass "read: same as create"

printf 'changed\n%s' "$SECRET" >out/motd.txt
call read "{\"type\":\"textfile_file\",\"id\":\"motd.txt\",\"prior\":$PRIOR}"
check "read: drift is visible" "res['attributes']['content'] == 'changed\n'"

call update "{\"type\":\"textfile_file\",\"id\":\"motd.txt\",\"prior\":$PRIOR,\"planned\":$(attrs motd.txt 'bye\n' null 0444)}"
check "update" "res['attributes']['content'] == 'bye\n' and res['attributes']['mode'] == '0444'
  and res['attributes']['sha256'] == '$(sha $'bye\n')'"
[ "$(cat out/motd.txt)" = bye ] && [ "$(stat -c %a out/motd.txt)" = 444 ] || fail "update: wrong file"

call plan_delete "{\"type\":\"textfile_file\",\"id\":\"motd.txt\",\"prior\":$PRIOR}"
check "plan_delete" 'res == {"deletes": ["the file motd.txt (4 bytes)"]}'
[ -e out/motd.txt ] || fail "plan_delete deleted"

# check_plan: two files at one path conflict, the created one named first; unknown paths conflict with nothing.
A=$(attrs "dup.txt" "x" null "0644"); B=$(attrs "./dup.txt" "y" null "0644"); U='{"path":{"$unknown":"string"}}'
call check_plan "{\"items\":[{\"address\":\"textfile_file.kept\",\"type\":\"textfile_file\",\"planned\":$A,\"existing\":true},{\"address\":\"textfile_file.new\",\"type\":\"textfile_file\",\"planned\":$B,\"existing\":false},{\"address\":\"textfile_file.u\",\"type\":\"textfile_file\",\"planned\":$U,\"existing\":false}]}"
check "check_plan finds two files at one path" 'res["conflicts"] == [{"addresses": ["textfile_file.new", "textfile_file.kept"], "message": "2 files are planned at the path dup.txt; give each textfile_file its own path"}]'
call check_plan "{\"items\":[{\"address\":\"textfile_file.a\",\"type\":\"textfile_file\",\"planned\":$A,\"existing\":false}]}"
check "check_plan without conflicts" 'res == {"conflicts": []}'
call check_plan '{"items":"no"}'
check "check_plan refuses malformed items" 'err["code"] == -32602'

call delete "{\"type\":\"textfile_file\",\"id\":\"motd.txt\",\"prior\":$PRIOR}"
check "delete" 'res == {}'
[ ! -e out/motd.txt ] || fail "delete left the file"
call delete "{\"type\":\"textfile_file\",\"id\":\"motd.txt\",\"prior\":$PRIOR}"
check "delete twice" 'res == {}'
call read "{\"type\":\"textfile_file\",\"id\":\"motd.txt\",\"prior\":$PRIOR}"
check "read after delete -> null" '"result" in r and res is None'

# --- import -----------------------------------------------------------------------------------------------
mkdir -p out/sub && printf 'made by hand' >out/sub/hand.txt && chmod 640 out/sub/hand.txt
call import '{"type":"textfile_file","id":"sub/hand.txt"}'
check "import" "res['id'] == 'sub/hand.txt' and res['attributes']['content'] == 'made by hand'
  and res['attributes']['mode'] == '0640' and res['attributes']['sensitive_content'] is None"
call import '{"type":"textfile_file","id":"sub/none.txt"}'
check "import of a missing file fails" "$NONRETRYABLE"

# --- retryable errors: root/.busy -------------------------------------------------------------------------
touch out/.busy
call create "{\"type\":\"textfile_file\",\"planned\":$(attrs busy.txt x null 0644)}"
check "busy: create is retryable" "$RETRYABLE and err['message'] == 'the store is busy: ./out/.busy exists'"
call update "{\"type\":\"textfile_file\",\"id\":\"sub/hand.txt\",\"prior\":$PRIOR,\"planned\":$(attrs sub/hand.txt x null 0644)}"
check "busy: update is retryable" "$RETRYABLE"
call delete "{\"type\":\"textfile_file\",\"id\":\"sub/hand.txt\",\"prior\":$PRIOR}"
check "busy: delete is retryable" "$RETRYABLE"
rm out/.busy
[ ! -e out/busy.txt ] && [ "$(cat out/sub/hand.txt)" = "made by hand" ] || fail "busy: something changed"

# --- JSON-RPC errors --------------------------------------------------------------------------------------
call frobnicate '{}'
check "unknown method -> -32601" 'err["code"] == -32601'
call read '[1,2]'
check "params not an object -> -32602" 'err["code"] == -32602'
call read '{"type":"other_type","id":"x","prior":{}}'
check "unknown type -> -32602" 'err["code"] == -32602'
call create '{"type":"textfile_file"}'
check "missing planned -> -32602" 'err["code"] == -32602'
printf 'this is not json\n' >&"${PROV[1]}"
IFS= read -r -t 10 RESP <&"${PROV[0]}" || fail "no response to a malformed line"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(not (r["id"] is None and r["error"]["code"] == -32700))' \
  "$RESP" || fail "parse error: got $RESP"
pass "malformed line -> -32700"

# --- end of input: exit 0 ---------------------------------------------------------------------------------
PID=$PROV_PID
TO_PROVIDER=${PROV[1]}
exec {TO_PROVIDER}>&- # end of input
for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID" 2>/dev/null && fail "the provider did not exit on end of input"
wait "$PID" && pass "exit 0 on end of input" || fail "exit status $? on end of input"

# --- secrets never leak -----------------------------------------------------------------------------------
! grep -q "$TOKEN" "$WORK/responses" "$WORK/stderr" || fail "the token appears in a response or on stderr"
! grep -rq "$TOKEN" out || fail "the token was written to a file"
! grep -q "$SECRET" "$WORK/stderr" || fail "sensitive content appears on stderr"
python3 - "$WORK/responses" "$SECRET" <<'EOF' || fail "sensitive content appears in an error message"
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line).get("error")
    if e and sys.argv[2] in json.dumps(e):
        sys.exit(1)
EOF
pass "the token and sensitive content never appear in messages"

# --- test hooks -------------------------------------------------------------------------------------------
HEAD='{"jsonrpc":"2.0","id":1,"method":"schemas","params":{"protocol_version":1}}
{"jsonrpc":"2.0","id":2,"method":"configure","params":{"config":{"root":"./hooks","token":null}}}'
CREATE="{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"create\",
  \"params\":{\"type\":\"textfile_file\",\"planned\":$(attrs c.txt c null 0644)}}"
CREATE="${CREATE//$'\n'/}"
set +e
printf '%s\n%s\n' "$HEAD" "$CREATE" | env -i PATH="$PATH" TEXTFILE_TEST_CRASH_ON=create "$PROVIDER" >hook.out 2>hook.err
rc=$?
set -e
[ $rc = 3 ] && grep -q "crashing on purpose" hook.err && [ "$(wc -l <hook.out)" = 2 ] && [ ! -e hooks/c.txt ] \
  || fail "TEXTFILE_TEST_CRASH_ON: rc $rc"
pass "TEXTFILE_TEST_CRASH_ON=create exits 3"
printf '%s\n%s\n' "$HEAD" "$CREATE" | env -i PATH="$PATH" TEXTFILE_TEST_GARBAGE_ON=create "$PROVIDER" >hook.out 2>hook.err \
  || fail "TEXTFILE_TEST_GARBAGE_ON: non-zero exit"
! python3 -c 'import json,sys; json.loads(sys.stdin.readlines()[2])' <hook.out 2>/dev/null \
  || fail "TEXTFILE_TEST_GARBAGE_ON: the third line is JSON"
pass "TEXTFILE_TEST_GARBAGE_ON=create writes a non-JSON line"
mkfifo hang.in
env -i PATH="$PATH" TEXTFILE_TEST_HANG_ON=create "$PROVIDER" <hang.in >hook.out 2>hook.err &
HANG_PID=$!
exec {HANG_IN}>hang.in
printf '%s\n%s\n' "$HEAD" "$CREATE" >&"$HANG_IN"
for _ in $(seq 100); do grep -q "hanging on purpose" hook.err && break; sleep 0.1; done
sleep 0.5
kill -0 "$HANG_PID" && [ "$(wc -l <hook.out)" = 2 ] || fail "TEXTFILE_TEST_HANG_ON: it did not hang"
kill "$HANG_PID" && wait "$HANG_PID" || true
HANG_PID=
exec {HANG_IN}>&-
pass "TEXTFILE_TEST_HANG_ON=create hangs"
set +e
printf '%s\n%s\n' "$HEAD" "$CREATE" | env -i PATH="$PATH" TEXTFILE_TEST_CRASH_AFTER_CREATE=1 "$PROVIDER" >hook.out 2>hook.err
rc=$?
set -e
[ $rc = 3 ] && [ "$(cat hooks/c.txt)" = c ] && [ "$(wc -l <hook.out)" = 2 ] || fail "TEXTFILE_TEST_CRASH_AFTER_CREATE: rc $rc"
pass "TEXTFILE_TEST_CRASH_AFTER_CREATE=1 writes the file, then exits 3"
START_NS=$(date +%s%N)
printf '%s\n' "$HEAD" | env -i PATH="$PATH" TEXTFILE_TEST_SLOW_ON=configure TEXTFILE_TEST_SLOW_MS=500 "$PROVIDER" \
  >hook.out 2>hook.err || fail "TEXTFILE_TEST_SLOW_ON: non-zero exit"
SLOW_MS=$(( ($(date +%s%N) - START_NS) / 1000000 ))
[ "$SLOW_MS" -ge 500 ] && [ "$(wc -l <hook.out)" = 2 ] && ! grep -q '"error"' hook.out \
  || fail "TEXTFILE_TEST_SLOW_ON: answered in $SLOW_MS ms: $(cat hook.out)"
pass "TEXTFILE_TEST_SLOW_ON=configure answers after TEXTFILE_TEST_SLOW_MS"

echo "all protocol checks passed"
