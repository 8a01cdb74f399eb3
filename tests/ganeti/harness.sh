#!/bin/bash
# harness.sh - a throw-away single-node Ganeti 3.0 cluster (fake hypervisor)
# inside private net/uts/mount namespaces, with osdef's `image` OS definition
# and `loopfile` ExtStorage provider installed.  Used by the ganeti test tier
# (tests/ganeti/conftest.py) and by the Vagrantfile.
#
#   harness.sh up          install packages if missing, create a fresh cluster
#                          (a no-op if a healthy one is up), install osdef into it
#   harness.sh install     (re)install the OS definition and the ExtStorage provider
#   harness.sh provision   venv (make venv) + up + build the default image: a dev node
#   harness.sh down        end our processes by pid, detach our loop devices,
#                          remove the namespaces and all cluster state
#   harness.sh status      exit 0 iff the cluster answers
#   harness.sh exec CMD..  run CMD inside the cluster (e.g. exec gnt-instance list)
#
# Isolation: all traffic stays on a veth pair inside our network namespace
# (192.0.2.0/24 node/master, 198.51.100.0/24 for instance IPs); the hostname
# lives in our UTS namespace; /etc/hosts, /etc/resolv.conf, /var/lib/ganeti,
# /var/log/ganeti, /run/ganeti, /run/lock and /srv/ganeti are bind mounts
# into $GH_STATE inside our mount namespace.  So the OS dir the cluster uses
# (/srv/ganeti/os/image inside) is $GH_STATE/srv/os/image on the host, and
# the host's own /srv/ganeti is never written.  Host side effects: apt
# packages, empty mount-point dirs, /etc/ganeti/file-storage-paths (removed
# by down) and $GH_STATE.
#
# Learnt from ../shared/reference/ganeti-harness.md: the ipolicy bounds, no
# ssh init, the missing /var/log/ganeti/extstorage, daemons under env -i,
# a fresh sysfs inside the netns, no host systemd.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${GH_REPO:=$(cd "$HERE/../.." && pwd)}"     # osdef checkout (its .venv runs the scripts)
: "${GH_NSDIR:=/run/osdef-ganeti}"              # persistent namespace handles
: "${GH_STATE:=/var/tmp/osdef-ganeti}"          # everything the cluster writes
: "${GH_NODE:=node1.example.test}"
: "${GH_NODE_IP:=192.0.2.10}"
: "${GH_CLUSTER:=cluster.example.test}"
: "${GH_CLUSTER_IP:=192.0.2.100}"
: "${GH_NETMASK:=24}"
: "${GH_IFACE:=gnt0}"                           # veth end carrying node + master IP
: "${GH_BRIDGE:=gntbr0}"                        # empty bridge for bridged NICs
: "${GH_TEMPLATES:=file,sharedfile,ext}"        # plain/drbd need device-mapper
: "${GH_COMPRESSION:=gzip,gzip-fast,gzip-slow,lzop}"
: "${GH_IPOLICY_BOUNDS:=min:cpu-count=1,disk-count=1,disk-size=1,memory-size=32,nic-count=0,spindle-use=1/max:cpu-count=8,disk-count=16,disk-size=1048576,memory-size=32768,nic-count=8,spindle-use=12}"
: "${GH_IPOLICY_STD:=cpu-count=1,disk-count=1,disk-size=1024,memory-size=128,nic-count=1,spindle-use=1}"
: "${GH_SITE_CONFIG:=}"                         # osdef site config; empty: $GH_STATE/osdef.yaml (TCG)
: "${GH_IMAGE:=debian-12}"                      # built by `provision`
SRV=/srv/ganeti                                 # path inside the mount namespace
OSDEF="$GH_REPO/.venv/bin/osdef"

log() { printf '[osdef-ganeti %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

in_ns() {  # run a command inside the cluster's namespaces, keeping the cwd
  nsenter --net="$GH_NSDIR/net" --uts="$GH_NSDIR/uts" --mount="$GH_NSDIR/mnt" \
    --wd="$PWD" -- "$@"
}

ns_exists() {
  local f
  for f in mnt net uts; do mountpoint -q "$GH_NSDIR/$f" 2>/dev/null || return 1; done
}

install_packages() {
  local missing="" p
  for p in ganeti lzop; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=" $p"
  done
  [ -z "$missing" ] && return 0
  log "apt: installing$missing (no recommends)"
  local policy_added="" rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # keep the postinst scripts from starting sshd/ganeti on the host
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends $missing >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null; } || rc=$?
  [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
  return $rc
}

ns_create() {
  mkdir -p "$GH_NSDIR"
  # the namespace handles must live on a mount with private propagation
  mountpoint -q "$GH_NSDIR" || mount --bind "$GH_NSDIR" "$GH_NSDIR"
  mount --make-private "$GH_NSDIR"
  touch "$GH_NSDIR/net" "$GH_NSDIR/uts" "$GH_NSDIR/mnt"
  unshare --net="$GH_NSDIR/net" --uts="$GH_NSDIR/uts" --mount="$GH_NSDIR/mnt" \
    --propagation private true

  mkdir -p "$GH_STATE"/{lib,log/os,log/extstorage,run,lock} \
    "$GH_STATE"/srv/{os,extstorage,file-storage,shared-file-storage,extstorage-data} \
    /run/ganeti /var/lib/ganeti /var/log/ganeti "$SRV"
  cat > "$GH_STATE/hosts" <<HOSTS
127.0.0.1	localhost
$GH_NODE_IP	$GH_NODE ${GH_NODE%%.*}
$GH_CLUSTER_IP	$GH_CLUSTER ${GH_CLUSTER%%.*}
HOSTS
  printf '# osdef-ganeti: no DNS inside the namespace\noptions timeout:1 attempts:1\n' \
    > "$GH_STATE/resolv.conf"

  in_ns /bin/bash -euc '
    ip link set lo up
    ip link add "$1" type veth peer name "$1p"
    ip link set "$1p" up
    ip link set "$1" up
    ip addr add "$2/$3" dev "$1"
    ip link add "$4" type bridge
    ip link set "$4" up
    hostname "$5"
    mount -t sysfs osdef-sysfs /sys          # /sys/class/net of our netns
    mount --bind "$6/hosts" /etc/hosts
    mount --bind "$6/resolv.conf" /etc/resolv.conf 2>/dev/null || true
    mount --bind "$6/lib" /var/lib/ganeti
    mount --bind "$6/log" /var/log/ganeti
    mount --bind "$6/run" /run/ganeti
    mount --bind "$6/lock" /run/lock
    mount --bind "$6/srv" "$7"
    # daemon-util would hand the daemons to a host systemd: hide it
    if [ -d /run/systemd/system ]; then mount -t tmpfs -o size=1m osdef-nosystemd /run/systemd; fi
  ' _ "$GH_IFACE" "$GH_NODE_IP" "$GH_NETMASK" "$GH_BRIDGE" "$GH_NODE" "$GH_STATE" "$SRV"
}

cluster_init() {
  mkdir -p /etc/ganeti
  printf '%s\n' "$SRV/file-storage" "$SRV/shared-file-storage" > /etc/ganeti/file-storage-paths
  log "gnt-cluster init $GH_CLUSTER"
  # the daemons get a clean environment: export/import and ExtStorage
  # scripts inherit noded's
  in_ns env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    gnt-cluster init \
    --no-ssh-init --no-etc-hosts \
    --enabled-hypervisors=fake \
    --enabled-disk-templates="$GH_TEMPLATES" \
    --file-storage-dir="$SRV/file-storage" \
    --shared-file-storage-dir="$SRV/shared-file-storage" \
    --master-netdev="$GH_IFACE" --master-netmask="$GH_NETMASK" \
    --nic-parameters="mode=bridged,link=$GH_BRIDGE" \
    --compression-tools="$GH_COMPRESSION" \
    --maintain-node-health=no \
    --ipolicy-bounds-specs="$GH_IPOLICY_BOUNDS" \
    --ipolicy-std-specs="$GH_IPOLICY_STD" \
    "$GH_CLUSTER" >&2
}

site_config() {  # the site config file to install (path visible inside the ns)
  if [ -n "$GH_SITE_CONFIG" ]; then echo "$GH_SITE_CONFIG"; return; fi
  # default: libguestfs under TCG (VMs and this CI machine have no usable
  # nested KVM); remove force_tcg on real hardware
  cat > "$GH_STATE/osdef.yaml" <<CONF
# written by tests/ganeti/harness.sh
libguestfs:
  backend_settings: [force_tcg]
CONF
  echo "$GH_STATE/osdef.yaml"
}

install_osdef() {
  [ -x "$OSDEF" ] || die "$OSDEF missing: run make venv in $GH_REPO first"
  local conf
  conf=$(site_config)
  in_ns "$OSDEF" install --os-dir "$SRV/os/image" --config "$conf" >&2
  in_ns "$OSDEF" install-extstorage --dir "$SRV/extstorage/loopfile" \
    --data-dir "$SRV/extstorage-data" >&2
}

ns_pids() {  # pids of all processes living in our network namespace
  local pid
  [ -e "$GH_NSDIR/net" ] || return 0
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    [ "$pid" = "$$" ] && continue
    if [ "/proc/$pid/ns/net" -ef "$GH_NSDIR/net" ]; then echo "$pid"; fi
  done 2>/dev/null
  return 0
}

detach_loops() {  # loop devices backed by any file of ours (ExtStorage volumes, file disks)
  local file dev
  [ -d "$GH_STATE" ] || return 0
  while IFS= read -r -d '' file; do
    for dev in $(losetup -j "$file" -n -O NAME 2>/dev/null); do
      losetup -d "$dev" 2>/dev/null && log "detached $dev ($file)" || true
    done
  done < <(find "$GH_STATE" -xdev -type f -size +0 -print0 2>/dev/null)
}

down() {
  if ns_exists; then
    # everything in our network namespace was started by us: TERM by pid, then KILL
    local pids i
    pids=$(ns_pids)
    if [ -n "$pids" ]; then
      log "terminating $(echo $pids | wc -w) processes in the namespace"
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null || true
      for i in $(seq 50); do
        pids=$(ns_pids); [ -z "$pids" ] && break
        sleep 0.1
      done
      # shellcheck disable=SC2086
      [ -n "$pids" ] && { log "killing $pids"; kill -KILL $pids 2>/dev/null || true; sleep 0.2; }
    fi
  fi
  detach_loops
  local f
  for f in mnt uts net; do
    if mountpoint -q "$GH_NSDIR/$f" 2>/dev/null; then umount "$GH_NSDIR/$f"; fi
  done
  if mountpoint -q "$GH_NSDIR" 2>/dev/null; then umount "$GH_NSDIR"; fi
  rm -rf "$GH_NSDIR" "$GH_STATE"
  rm -f /etc/ganeti/file-storage-paths
  log "down"
}

status() {  # healthy = namespaces + core daemons alive + a job runs
  ns_exists || return 1
  local d pid
  for d in ganeti-noded ganeti-confd ganeti-wconfd ganeti-luxid; do
    pid=$(cat "$GH_STATE/run/$d.pid" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null || return 1
  done
  in_ns timeout 30 gnt-debug delay 0.1 >/dev/null 2>&1
}

up() {
  install_packages
  if status; then
    log "cluster already up"
  else
    down
    ns_create
    cluster_init
    log "cluster up: master $(in_ns gnt-cluster getmaster)"
  fi
  install_osdef
}

provision() {  # a developer node: venv, cluster, OS definition, default image
  make -C "$GH_REPO" venv >&2
  up
  local conf
  conf=$(site_config)
  log "building image $GH_IMAGE (cached after the first time)"
  OSDEF_CONFIG="$conf" "$OSDEF" image build "$GH_IMAGE" >&2
  log "ready: $0 exec gnt-instance add -t file --disk 0:size=4G -o image+debian --no-name-check --no-ip-check --no-start -n $GH_NODE vm1.example.test"
}

cmd=${1:-}
shift || true
case "$cmd" in
  up) up ;;
  install) install_osdef ;;
  provision) provision ;;
  down) down ;;
  status) status ;;
  exec) in_ns "$@" ;;
  *) echo "usage: $0 up|install|provision|down|status|exec CMD..." >&2; exit 2 ;;
esac
