#!/bin/bash
# harness.sh - a throw-away Ganeti 3.0 or 3.1 cluster (fake hypervisor) of GH_NODES
# nodes (default 1), each in its own net/uts/mount namespaces with an sshd,
# with osdef's `image` OS definition and `loopfile` ExtStorage provider
# installed on every node: from the checkout's venv (GH_OSDEF=venv, the
# default), or the Debian package's (GH_OSDEF=package: the trixie tier runs
# this script inside a Debian 13 root with osdef_*.deb installed; each node
# then gets a copy of the package's /etc/osdef plus the site config).  Node 1 is the master (`gnt-cluster init`); nodes
# 2..N join with the real `gnt-node add` over SSH.  Used by the ganeti test
# tier (tests/cluster/ganeti/conftest.py) and by the Vagrantfile.
#
#   harness.sh up          install packages if missing, create a fresh cluster
#                          (a no-op if a healthy one is up), install osdef into it
#   harness.sh packages    install the Debian packages the cluster needs, if missing
#   harness.sh install     (re)install the OS definition and the ExtStorage provider
#   harness.sh provision   venv (make venv) + up + build the default image: a dev node
#   harness.sh down        end our processes by pid, detach our loop devices,
#                          remove the namespaces and all cluster state
#   harness.sh status      exit 0 iff the cluster answers
#   harness.sh exec CMD..  run CMD on the master (e.g. exec gnt-instance list);
#                          GH_EXEC_NODE=node2.example.test: on that node instead
#
# Isolation: all traffic stays inside our network namespaces: node i has
# 192.0.2.(9+i) on its veth gnt0, whose peer sits on the bridge gntlan in
# node 1's namespace (the cluster's LAN; the master IP 192.0.2.100 moves
# with the master), 198.51.100.0/24 is for instance IPs.  The hostname lives
# in each node's UTS namespace; /etc/hosts, /etc/resolv.conf, /etc/ganeti,
# /etc/ssh, /etc/osdef, /root/.ssh, /var/lib/ganeti, /var/log/ganeti,
# /run/ganeti, /run/lock and /srv/ganeti are bind mounts into the node's
# state dir inside its mount namespace: node 1's is $GH_STATE, node i's
# $GH_STATE/node$i.  So node 1's OS dir (/srv/ganeti/os/image inside) is
# $GH_STATE/srv/os/image on the host and the host's own /srv/ganeti,
# /etc/ssh, /root/.ssh and /etc/ganeti are never written.  The sharedfile
# dir and the loopfile data dir are node 1's, bind-mounted on every node (a
# NAS).  GH_NODE_CACHE (a path, e.g. the osdef image cache) is given a
# private empty dir on nodes 2..N, so each node has its own image cache at
# the same path.  Host side effects: apt packages, empty mount-point dirs
# (/etc/osdef, /root/.ssh, /run/sshd) and $GH_STATE.
#
# Learnt from ../shared/reference/ganeti-harness.md: the ipolicy bounds, the
# missing /var/log/ganeti/extstorage, daemons under env -i, a fresh sysfs
# inside the netns, no host systemd.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${GH_REPO:=$(cd "$HERE/../../.." && pwd)}"  # osdef checkout (its .venv runs the scripts)
: "${GH_NSDIR:=/run/osdef-ganeti}"              # persistent namespace handles
: "${GH_STATE:=/var/tmp/osdef-ganeti}"          # everything the cluster writes
: "${GH_NODES:=1}"                               # cluster size
: "${GH_NODE:=node1.example.test}"              # the master; node i is node$i.example.test
: "${GH_NODE_IP:=192.0.2.10}"                   # the master's; node i has 192.0.2.(9+i)
: "${GH_NODE_CACHE:=}"                          # a path each node gets privately (image cache)
: "${GH_EXEC_NODE:=}"                           # exec: run on this node (default: node 1)
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
: "${GH_OSDEF:=venv}"                           # venv | package (see the top)
SRV=/srv/ganeti                                 # path inside the mount namespace
OSDEF="$GH_REPO/.venv/bin/osdef"
LAN=gntlan                                      # bridge in node 1's netns joining the nodes
case "$GH_NODES" in ''|*[!0-9]*|0) echo "GH_NODES must be 1..9, got '$GH_NODES'" >&2; exit 2 ;; esac
[ "$GH_NODES" -le 9 ] || { echo "GH_NODES must be 1..9, got '$GH_NODES'" >&2; exit 2; }

node_name() { if [ "$1" = 1 ]; then echo "$GH_NODE"; else echo "node$1.example.test"; fi; }
node_ip() { if [ "$1" = 1 ]; then echo "$GH_NODE_IP"; else echo "${GH_NODE_IP%.*}.$(( ${GH_NODE_IP##*.} + $1 - 1 ))"; fi; }
node_nsdir() { if [ "$1" = 1 ]; then echo "$GH_NSDIR"; else echo "$GH_NSDIR/node$1"; fi; }
node_state() { if [ "$1" = 1 ]; then echo "$GH_STATE"; else echo "$GH_STATE/node$1"; fi; }
node_index() {  # node name -> index (1..9)
  local i
  for i in $(seq 9); do [ "$(node_name "$i")" = "$1" ] && { echo "$i"; return 0; }; done
  return 1
}

log() { printf '[osdef-ganeti %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

in_node() {  # in_node I CMD..: run CMD inside node I's namespaces, keeping the cwd
  local d
  d=$(node_nsdir "$1"); shift
  nsenter --net="$d/net" --uts="$d/uts" --mount="$d/mnt" --wd="$PWD" -- "$@"
}
in_ns() { in_node 1 "$@"; }  # on the master

node_ns_exists() {
  local f d
  d=$(node_nsdir "$1")
  for f in mnt net uts; do mountpoint -q "$d/$f" 2>/dev/null || return 1; done
}
ns_exists() { node_ns_exists 1; }

present_nodes() {  # indexes of the nodes whose namespaces exist (node 1 first)
  local i
  for i in $(seq 9); do node_ns_exists "$i" && echo "$i"; done
  return 0
}

install_packages() {
  local missing="" p
  for p in ganeti lzop openssh-server; do
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

# persist_namespaces D: new net, uts and mount namespaces, kept by bind mounts on D/{net,uts,mnt}.
# Linux binds a mount namespace's file only into a namespace with a lower id (its loop check),
# and a kernel that hands out namespace ids in per-CPU batches (6.18) can give a namespace made
# later on another CPU a lower id than the one we run in.  The host's initial namespace is always
# lower; a namespace of our own (the trixie tier runs this script in a Debian 13 root) may not
# be: `unshare: mount /proc/N/ns/mnt on D/mnt failed: Invalid argument`, now and then.  One made
# on the CPU ours was made on always gets a higher id, so then try again pinned to each CPU.
persist_namespaces() {
  local d=$1 err cpu f
  touch "$d/net" "$d/uts" "$d/mnt"
  err=$(unshare --net="$d/net" --uts="$d/uts" --mount="$d/mnt" --propagation private true 2>&1) && return 0
  for cpu in $(seq 0 $(( $(nproc --all) - 1 ))); do
    for f in mnt uts net; do if mountpoint -q "$d/$f"; then umount "$d/$f"; fi; done
    if taskset -c "$cpu" unshare --net="$d/net" --uts="$d/uts" --mount="$d/mnt" \
         --propagation private true 2>/dev/null; then
      log "namespaces of $d made on CPU $cpu (unpinned: $err)"
      return 0
    fi
  done
  die "$err"
}

ns_create() {  # ns_create I: node I's namespaces, network, private dirs and sshd
  local i=$1 d st name ip j
  d=$(node_nsdir "$i"); st=$(node_state "$i"); name=$(node_name "$i"); ip=$(node_ip "$i")
  mkdir -p "$d"
  if [ "$i" = 1 ]; then
    # the namespace handles must live on a mount with private propagation
    mountpoint -q "$GH_NSDIR" || mount --bind "$GH_NSDIR" "$GH_NSDIR"
    mount --make-private "$GH_NSDIR"
  fi
  persist_namespaces "$d"

  mkdir -p "$st"/{lib,log/os,log/extstorage,run,lock,etc-ssh,root-ssh,etc-osdef} \
    "$st"/srv/{os,extstorage,file-storage,shared-file-storage,extstorage-data} \
    /run/ganeti /var/lib/ganeti /var/log/ganeti "$SRV" /etc/osdef /root/.ssh /run/sshd
  chmod 700 "$st/root-ssh"
  # Ganeti's /etc/ganeti (share/lib symlinks) plus our file-storage-paths
  rm -rf "$st/etc-ganeti"
  cp -a /etc/ganeti "$st/etc-ganeti"
  printf '%s\n' "$SRV/file-storage" "$SRV/shared-file-storage" > "$st/etc-ganeti/file-storage-paths"
  # the node's own sshd config and host keys (gnt-node add replaces the keys by the cluster's)
  cp -a /etc/ssh/ssh_config /etc/ssh/sshd_config /etc/ssh/moduli "$st/etc-ssh/"
  [ -d /etc/ssh/ssh_config.d ] && cp -a /etc/ssh/ssh_config.d "$st/etc-ssh/"
  [ -d /etc/ssh/sshd_config.d ] && cp -a /etc/ssh/sshd_config.d "$st/etc-ssh/"
  rm -f "$st"/etc-ssh/ssh_host_*
  ssh-keygen -q -t rsa -b 2048 -N '' -f "$st/etc-ssh/ssh_host_rsa_key"
  ssh-keygen -q -t ed25519 -N '' -f "$st/etc-ssh/ssh_host_ed25519_key"
  {
    printf '127.0.0.1\tlocalhost\n'
    for j in $(seq "$GH_NODES"); do
      printf '%s\t%s %s\n' "$(node_ip "$j")" "$(node_name "$j")" "$(node_name "$j" | cut -d. -f1)"
    done
    printf '%s\t%s %s\n' "$GH_CLUSTER_IP" "$GH_CLUSTER" "${GH_CLUSTER%%.*}"
  } > "$st/hosts"
  printf '# osdef-ganeti: no DNS inside the namespace\noptions timeout:1 attempts:1\n' \
    > "$st/resolv.conf"
  if [ -n "$GH_NODE_CACHE" ]; then mkdir -p "$GH_NODE_CACHE" "$st/node-cache"; fi
  # Ganeti reloads sshd after replacing host keys (`service ssh restart`, daemon-util):
  # inside a node that means our sshd, not the host's init script and pid file
  cat > "$st/ssh-initd" <<'INITD'
#!/bin/sh
# written by tests/cluster/ganeti/harness.sh: `service ssh restart` inside a harness node
case "$1" in
  start|restart|reload|force-reload) kill -HUP "$(cat /run/ganeti/sshd.pid)" ;;
esac
exit 0
INITD
  chmod 755 "$st/ssh-initd"

  in_node "$i" /bin/bash -euc '
    ip link set lo up
    ip link add "$1" type veth peer name "$1p"
    ip link set "$1" up
    ip addr add "$2/$3" dev "$1"
    ip link add "$4" type bridge
    ip link set "$4" up
    hostname "$5"
    mount -t sysfs osdef-sysfs /sys          # /sys/class/net of our netns
    mount --bind "$6/hosts" /etc/hosts
    mount --bind "$6/resolv.conf" /etc/resolv.conf 2>/dev/null || true
    mount --bind "$6/etc-ganeti" /etc/ganeti
    mount --bind "$6/etc-ssh" /etc/ssh
    mount --bind "$6/etc-osdef" /etc/osdef
    mount --bind "$6/root-ssh" /root/.ssh
    mount --bind "$6/ssh-initd" /etc/init.d/ssh
    mount --bind "$6/lib" /var/lib/ganeti
    mount --bind "$6/log" /var/log/ganeti
    mount --bind "$6/run" /run/ganeti
    mount --bind "$6/lock" /run/lock
    mount --bind "$6/srv" "$7"
    if [ "$8" != "$6" ]; then              # storage shared with node 1 (a NAS)
      mount --bind "$8/srv/shared-file-storage" "$7/shared-file-storage"
      mount --bind "$8/srv/extstorage-data" "$7/extstorage-data"
      [ -z "$9" ] || mount --bind "$6/node-cache" "$9"
    fi
    # daemon-util would hand the daemons to a host systemd: hide it
    if [ -d /run/systemd/system ]; then mount -t tmpfs -o size=1m osdef-nosystemd /run/systemd; fi
  ' _ "$GH_IFACE" "$ip" "$GH_NETMASK" "$GH_BRIDGE" "$name" "$st" "$SRV" "$GH_STATE" "$GH_NODE_CACHE"
  # the LAN: node 1's netns holds the bridge; every node's gnt0p is a port of it
  if [ "$i" = 1 ]; then
    in_node 1 ip link add "$LAN" type bridge
    in_node 1 ip link set "$LAN" up
  else
    in_node "$i" ip link set "${GH_IFACE}p" name "${GH_IFACE}p$i"
    in_node "$i" ip link set "${GH_IFACE}p$i" netns "$(node_nsdir 1)/net"
  fi
  local port="${GH_IFACE}p"; [ "$i" = 1 ] || port="${GH_IFACE}p$i"
  in_node 1 ip link set "$port" master "$LAN"
  in_node 1 ip link set "$port" up
  # an sshd of the node's own (Ganeti's SSH setup, gnt-cluster command/copyfile)
  in_node "$i" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/sbin/sshd \
    -o PidFile=/run/ganeti/sshd.pid -o ListenAddress=0.0.0.0 -E /var/log/ganeti/sshd.log
}

cluster_init() {
  log "gnt-cluster init $GH_CLUSTER"
  # the daemons get a clean environment: export/import and ExtStorage
  # scripts inherit noded's
  in_ns env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    gnt-cluster init \
    --no-etc-hosts \
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

node_join() {  # node_join I: the real `gnt-node add` of node I, over SSH
  local i=$1 name st
  name=$(node_name "$i"); st=$(node_state "$i")
  # the admin's one manual step on a new node: let the master's root log in
  cat "$GH_STATE"/root-ssh/id_*.pub > "$st/root-ssh/authorized_keys"
  chmod 600 "$st/root-ssh/authorized_keys"
  log "gnt-node add $name"
  in_ns env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    gnt-node add --no-ssh-key-check "$name" >&2
}

site_config() {  # the site config file to install (path visible inside the ns)
  if [ -n "$GH_SITE_CONFIG" ]; then echo "$GH_SITE_CONFIG"; return; fi
  # default: libguestfs under TCG (VMs and this CI machine have no usable
  # nested KVM); remove force_tcg on real hardware
  cat > "$GH_STATE/osdef.yaml" <<CONF
# written by tests/cluster/ganeti/harness.sh
libguestfs:
  backend_settings: [force_tcg]
CONF
  echo "$GH_STATE/osdef.yaml"
}

install_osdef() {  # on every node, as an admin does (Ganeti does not replicate OS dirs)
  local conf i
  conf=$(site_config)
  if [ "$GH_OSDEF" = package ]; then  # the package's OS dir and providers; its /etc/osdef per node
    for i in $(present_nodes); do
      cp -a /etc/osdef/. "$(node_state "$i")/etc-osdef/"
      cp "$conf" "$(node_state "$i")/etc-osdef/osdef.yaml"
      in_node "$i" osdef diagnose >&2
    done
    return 0
  fi
  [ -x "$OSDEF" ] || die "$OSDEF missing: run make venv in $GH_REPO first"
  for i in $(present_nodes); do
    in_node "$i" "$OSDEF" install --os-dir "$SRV/os/image" --config "$conf" >&2
    in_node "$i" "$OSDEF" install-extstorage --dir "$SRV/extstorage/loopfile" \
      --data-dir "$SRV/extstorage-data" >&2
  done
}

ns_pids() {  # pids of all processes living in our nodes' network namespaces
  local pid i d nets=()
  for i in $(seq 9); do
    d=$(node_nsdir "$i")
    if mountpoint -q "$d/net" 2>/dev/null; then nets+=("$d/net"); fi
  done
  [ ${#nets[@]} -gt 0 ] || return 0
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    [ "$pid" = "$$" ] && continue
    for d in "${nets[@]}"; do
      if [ "/proc/$pid/ns/net" -ef "$d" ]; then echo "$pid"; break; fi
    done
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
  if [ -n "$(present_nodes)" ]; then
    # everything in our network namespaces was started by us: TERM by pid, then KILL
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
  local f i d
  for i in $(seq 9 -1 1); do
    d=$(node_nsdir "$i")
    for f in mnt uts net; do
      if mountpoint -q "$d/$f" 2>/dev/null; then umount "$d/$f"; fi
    done
  done
  if mountpoint -q "$GH_NSDIR" 2>/dev/null; then umount "$GH_NSDIR"; fi
  rm -rf "$GH_NSDIR" "$GH_STATE"
  log "down"
}

status() {  # healthy = namespaces + core daemons alive + a job runs + GH_NODES nodes
  ns_exists || return 1
  local d pid i n
  for d in ganeti-noded ganeti-confd ganeti-wconfd ganeti-luxid; do
    pid=$(cat "$GH_STATE/run/$d.pid" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null || return 1
  done
  for i in $(seq 2 "$GH_NODES"); do
    node_ns_exists "$i" || return 1
    pid=$(cat "$(node_state "$i")/run/ganeti-noded.pid" 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null || return 1
  done
  node_ns_exists "$((GH_NODES + 1))" && return 1  # a bigger cluster is up
  in_ns timeout 30 gnt-debug delay 0.1 >/dev/null 2>&1 || return 1
  n=$(in_ns timeout 30 gnt-node list --no-headers -o name 2>/dev/null | wc -l)
  [ "$n" = "$GH_NODES" ]
}

up() {
  install_packages
  if status; then
    log "cluster already up"
  else
    down
    ns_create 1
    cluster_init
    local i
    for i in $(seq 2 "$GH_NODES"); do
      ns_create "$i"
      node_join "$i"
    done
    log "cluster up: master $(in_ns gnt-cluster getmaster), nodes: $(in_ns gnt-node list --no-headers -o name | tr '\n' ' ')"
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
  packages) install_packages ;;
  install) install_osdef ;;
  provision) provision ;;
  down) down ;;
  status) status ;;
  exec)
    if [ -n "$GH_EXEC_NODE" ]; then
      idx=$(node_index "$GH_EXEC_NODE") || die "GH_EXEC_NODE=$GH_EXEC_NODE is not a node of this harness"
      node_ns_exists "$idx" || die "node $GH_EXEC_NODE is not up"
      in_node "$idx" "$@"
    else
      in_ns "$@"
    fi ;;
  *) echo "usage: $0 up|packages|install|provision|down|status|exec CMD..." >&2; exit 2 ;;
esac
