#!/usr/bin/env bash
# Re-makes testdata/kamailio-*.pcapng from a run of the Kamailio end-to-end tests
# (testdata/README.md). Needs Kamailio and tshark (./scripts/test installs them).
#
#   testdata/make-kamailio-captures.sh            # runs the tests, then curates
#   testdata/make-kamailio-captures.sh RAW_DIR    # curates captures already kept in RAW_DIR
#
# Curating keeps the Diameter messages (CER/CEA and every Cx message) and drops the
# watchdog (DWR/DWA, every 5 s with --tc 5) and TCP segments without payload.
set -euo pipefail
cd "$(dirname "$0")/.."

raw="${1:-}"
if [ -z "$raw" ]; then
  raw="$(mktemp -d /tmp/sichss-raw-captures.XXXXXX)"
  SICHSS_E2E_KEEP_CAPTURES="$raw" cargo nextest run --test kamailio
fi

# test name -> committed capture
declare -A out=(
  [shared_impu_volte_and_rcs_with_aka]=kamailio-volte-rcs-aka.pcapng
  [shared_impu_volte_and_rcs_with_sip_digest]=kamailio-volte-rcs-digest.pcapng
  [distinct_impu_per_service_registers_and_deregisters_independently]=kamailio-distinct-impu.pcapng
  [unsubscribe_rcs_with_distinct_impu_sends_rtr_for_rcs_only]=kamailio-rtr-distinct-impu.pcapng
  [unsubscribe_rcs_with_shared_impu_keeps_volte_registered]=kamailio-rtr-shared-impu.pcapng
  [unsubscribed_sic_gets_403_and_legacy_subscriber_registers_with_plain_impi]=kamailio-sic003-legacy.pcapng
)

for test in "${!out[@]}"; do
  in="$raw/$test.pcapng"
  [ -f "$in" ] || { echo "missing $in" >&2; exit 1; }
  # The HSS port: where the CSCFs' connections (SYN without ACK) go.
  port="$(tshark -r "$in" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' -T fields -e tcp.dstport \
          | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }')"
  tshark -r "$in" -d "tcp.port==$port,diameter" \
    -Y "tcp.len > 0 && diameter && diameter.cmd.code != 280" -w "testdata/${out[$test]}"
  echo "testdata/${out[$test]}: $(tshark -r "testdata/${out[$test]}" | wc -l) frames (HSS port $port)"
done
