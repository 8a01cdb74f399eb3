#!/bin/bash
# debroot.sh - Debian roots for the trixie tier: made with debootstrap from the Debian mirror,
# cached under /var/tmp, and entered as a fresh overlay in a mount namespace of their own (so a
# test run never changes the cached root and nothing is mounted in the host's namespace).
#
#   debroot.sh base RELEASE [PACKAGE..]   print the cached base root of RELEASE: debootstrap
#                                         --variant=minbase + `apt-get install PACKAGE..` (with a
#                                         .deb among them, its dependencies: it is installed, then
#                                         purged).  Rebuilt when the recipe changed (release,
#                                         mirror, packages, a .deb's Depends/Recommends, the
#                                         functions that build it) or after DR_MAX_AGE_DAYS
#                                         (default 7: security updates); the rest of this
#                                         script (enter/run/leave) does not make a root stale
#   debroot.sh key RELEASE [PACKAGE..]    print the cache key base would use (no build)
#   debroot.sh enter NAME BASE            a fresh overlay of BASE, entered in its own mount
#                                         namespace ($DR_NSDIR/NAME.mnt) with /proc, /sys, /dev,
#                                         a tmpfs /run and /tmp, and $DR_WORK/NAME/state bind-mounted
#                                         at /var/lib/osdef-test (the host sees what tests write
#                                         there); the root is pivoted, so nsenter lands inside it
#   debroot.sh run NAME CMD..             run CMD in it (cwd /, a clean environment)
#   debroot.sh leave NAME                 end its processes, drop the namespace and the overlay
#                                         (and $DR_NSDIR's own bind mount after the last root)
#
# Learnt from shared/reference/debian13.md: debootstrap minbase + apt with a policy-rc.d that
# exits 101 (no service starts), the root bind-mounted onto itself before unshare/pivot.
set -euo pipefail

: "${DR_CACHE:=/var/tmp/osdef-debroot}"        # cached base roots
: "${DR_WORK:=/var/tmp/osdef-debroot-run}"     # per-run overlays (upper, work, merged, state)
: "${DR_NSDIR:=/run/osdef-debroot}"            # namespace handles
: "${DR_MIRROR:=http://deb.debian.org/debian}"
: "${DR_SECURITY:=http://deb.debian.org/debian-security}"
: "${DR_MAX_AGE_DAYS:=7}"
RECIPE_VERSION=1                                # bump to rebuild every cached root
STATE_IN_ROOT=/var/lib/osdef-test

log() { printf '[debroot %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

BUILDERS=(in_chroot sources build_base)        # the functions that make a root: its recipe

recipe_key() {  # recipe_key RELEASE PACKAGE..: what the cached root was made from
  local release=$1 p; shift
  {
    echo "v$RECIPE_VERSION $release $DR_MIRROR $DR_SECURITY"
    declare -f "${BUILDERS[@]}"                 # their text as bash parsed it (no comments)
    for p in "$@"; do
      case "$p" in
        *.deb) dpkg-deb -f "$p" Package Depends Recommends ;;
        *) echo "$p" ;;
      esac
    done
  } | sha256sum | cut -c1-16
}

in_chroot() {  # in_chroot ROOT CMD..: CMD in ROOT with /proc and /dev, mounts private to it
  local root=$1; shift
  unshare --mount --propagation private /bin/bash -euc '
    root=$1; shift
    mount --bind "$root" "$root"
    mount -t proc osdef-proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs osdef-run "$root/run"
    exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive "$@"
  ' _ "$root" "$@"
}

sources() {  # the apt sources of RELEASE (Debian's mirror only)
  local release=$1
  printf 'deb %s %s main\n' "$DR_MIRROR" "$release"
  printf 'deb %s %s-updates main\n' "$DR_MIRROR" "$release"
  printf 'deb %s %s-security main\n' "$DR_SECURITY" "$release"
}

build_base() {  # build_base RELEASE DIR PACKAGE..
  local release=$1 dir=$2 p debs=() names=(); shift 2
  for p in "$@"; do case "$p" in *.deb) debs+=("$p") ;; *) names+=("$p") ;; esac; done
  rm -rf "$dir.new"
  mkdir -p "$dir.new"
  log "debootstrap --variant=minbase $release ($DR_MIRROR)"
  debootstrap --variant=minbase "$release" "$dir.new" "$DR_MIRROR" >"$dir.new.log" 2>&1 ||
    { tail -5 "$dir.new.log" >&2; die "debootstrap $release failed (log: $dir.new.log)"; }
  sources "$release" > "$dir.new/etc/apt/sources.list"
  cp /etc/resolv.conf "$dir.new/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' > "$dir.new/usr/sbin/policy-rc.d"
  chmod 755 "$dir.new/usr/sbin/policy-rc.d"
  log "apt: ${names[*]:-nothing} ${debs[*]:+and the dependencies of ${debs[*]##*/}}"
  in_chroot "$dir.new" apt-get update -q >>"$dir.new.log" 2>&1
  if [ ${#names[@]} -gt 0 ]; then
    in_chroot "$dir.new" apt-get install -y -q --no-install-recommends "${names[@]}" >>"$dir.new.log" 2>&1 ||
      { tail -5 "$dir.new.log" >&2; die "apt-get install in $release failed (log: $dir.new.log)"; }
  fi
  for p in "${debs[@]}"; do
    cp "$p" "$dir.new/tmp/"
    in_chroot "$dir.new" apt-get install -y -q --no-install-recommends "/tmp/${p##*/}" >>"$dir.new.log" 2>&1 ||
      { tail -5 "$dir.new.log" >&2; die "apt-get install ${p##*/} in $release failed (log: $dir.new.log)"; }
    in_chroot "$dir.new" dpkg --purge "$(dpkg-deb -f "$p" Package)" >>"$dir.new.log" 2>&1
    rm -f "$dir.new/tmp/${p##*/}"
  done
  in_chroot "$dir.new" apt-get clean
  rm -rf "$dir"
  mv "$dir.new" "$dir"
  mv "$dir.new.log" "$dir.log"
}

base() {  # base RELEASE PACKAGE..: print the cached root, (re)building it when stale
  local release=$1 key dir; shift
  key=$(recipe_key "$release" "$@")
  dir="$DR_CACHE/$release-$key"
  mkdir -p "$DR_CACHE"
  exec 9>"$DR_CACHE/$release.lock"
  flock 9
  if [ -f "$dir/etc/debian_version" ] && [ -z "$(find "$dir/etc/debian_version" -mtime +"$DR_MAX_AGE_DAYS")" ] &&
     [ -f "$dir.log" ]; then
    log "cached $release root: $dir"
  else
    local started=$SECONDS
    build_base "$release" "$dir" "$@"
    touch "$dir/etc/debian_version"
    log "built the $release root in $((SECONDS - started)) s: $dir"
    # older roots of this release are stale now
    find "$DR_CACHE" -maxdepth 1 -name "$release-*" ! -name "$release-$key*" -exec rm -rf {} + 2>/dev/null || true
  fi
  echo "$dir"
}

handle() { echo "$DR_NSDIR/$1.mnt"; }

enter() {  # enter NAME BASE
  local name=$1 base=$2 w h
  w="$DR_WORK/$name"; h=$(handle "$name")
  [ -d "$base/etc" ] || die "$base is not a root"
  leave "$name" 2>/dev/null || true
  mkdir -p "$w"/{upper,work,merged,state} "$DR_NSDIR"
  mountpoint -q "$DR_NSDIR" || mount --bind "$DR_NSDIR" "$DR_NSDIR"
  mount --make-private "$DR_NSDIR"
  touch "$h"
  unshare --mount="$h" --propagation private true
  nsenter --mount="$h" -- /bin/bash -euc '
    base=$1 w=$2 state=$3
    mount -t overlay osdef-root -o "lowerdir=$base,upperdir=$w/upper,workdir=$w/work" "$w/merged"
    m=$w/merged
    mount -t proc osdef-proc "$m/proc"
    mount --rbind /sys "$m/sys"
    mount --rbind /dev "$m/dev"
    mount -t tmpfs -o mode=755 osdef-run "$m/run"
    mkdir -m 1777 "$m/run/lock"
    mount -t tmpfs -o mode=1777 osdef-tmp "$m/tmp"
    mkdir -p "$m$state"
    mount --bind "$w/state" "$m$state"
    cd "$m"
    mkdir -p .osdef-oldroot
    pivot_root . .osdef-oldroot
    umount -l /.osdef-oldroot
    rmdir /.osdef-oldroot
  ' _ "$base" "$w" "$STATE_IN_ROOT"
  log "entered $name: overlay of $base (state: $w/state = $STATE_IN_ROOT inside)"
}

run() {  # run NAME CMD..
  local name=$1 h; shift
  h=$(handle "$name")
  mountpoint -q "$h" 2>/dev/null || die "root $name is not entered"
  nsenter --mount="$h" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

leave() {  # leave NAME
  local name=$1 h pid pids w
  h=$(handle "$name"); w="$DR_WORK/$name"
  if mountpoint -q "$h" 2>/dev/null; then
    for pid in /proc/[0-9]*; do
      pid=${pid#/proc/}
      [ "$pid" = "$$" ] && continue
      if [ "/proc/$pid/ns/mnt" -ef "$h" ]; then pids+=" $pid"; fi
    done 2>/dev/null
    # shellcheck disable=SC2086
    [ -z "${pids:-}" ] || { kill -KILL $pids 2>/dev/null || true; sleep 0.2; }
    umount "$h"
  fi
  rm -f "$h"
  rm -rf "$w"
  # the last root gone: nothing of ours stays mounted in the host's namespace
  if mountpoint -q "$DR_NSDIR" 2>/dev/null && [ -z "$(find "$DR_NSDIR" -mindepth 1 -print -quit)" ]; then
    umount "$DR_NSDIR" && rmdir "$DR_NSDIR"
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  base) base "$@" ;;
  key) recipe_key "$@" ;;
  enter) enter "$@" ;;
  run) run "$@" ;;
  leave) leave "$@" ;;
  *) echo "usage: $0 base|key RELEASE [PKG..] | enter NAME BASE | run NAME CMD.. | leave NAME" >&2; exit 2 ;;
esac
