# Sourced by scripts/lib/pg.sh and scripts/lib/bench-common.sh.
#
# port_candidate: a random TCP port below the kernel's ephemeral range. Servers started by the
# scripts get their port checked free and then bind it a moment later; a port inside the
# ephemeral range could meanwhile be handed to an outgoing connection (a client, pg_basebackup,
# a replica's WAL stream) and the server's bind would fail.
port_candidate() {
  local low=32768 first span
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
  if [ "$low" -gt 12000 ]; then first=10000; span=$((low - 10000)); else first=$((low > 3024 ? low - 2000 : 1024)); span=1000; fi
  echo $((first + (RANDOM * 32768 + RANDOM) % span))
}
