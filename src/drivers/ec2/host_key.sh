#!/bin/sh
# Replaces the instance's ed25519 host key, which came in through user data (readable from the
# instance metadata by any process on the instance, for its whole life), with one generated on the
# host. Run by the ec2 driver over a connection pinned to the user-data key, in two idempotent
# phases, so an interruption between them never leaves the host with a key the record lacks:
#   sh -s prepare    make the new key beside the old one (once) and print its public key
#   sh -s activate   move it into place and make sshd load it: SIGHUP to the pid in /run/sshd.pid
#                    (what `systemctl reload ssh` does), or systemctl itself without a pid file;
#                    connections already open stay up
# Host paths go through $R (GM_SYSROOT: empty on a real host, an emulated host's root in tests).
set -eu
R="${GM_SYSROOT:-}"
key="$R/etc/ssh/ssh_host_ed25519_key"
new="$key.gm-new"
if [ "$(id -u)" -eq 0 ]; then S=""; else S="sudo -n"; fi

case "${1:-}" in
  prepare)
    if ! $S test -s "$new" || ! $S test -s "$new.pub"; then
      $S rm -f "$new" "$new.pub"
      $S ssh-keygen -q -t ed25519 -N '' -C "host-key-made-on-the-host" -f "$new" </dev/null
    fi
    $S cat "$new.pub"
    ;;
  activate)
    if $S test -e "$new"; then $S mv -f "$new" "$key"; fi
    if $S test -e "$new.pub"; then $S mv -f "$new.pub" "$key.pub"; fi
    if $S test -s "$R/run/sshd.pid"; then
      $S kill -HUP "$($S cat "$R/run/sshd.pid")"
    else
      $S systemctl reload ssh 2>/dev/null || $S systemctl reload sshd
    fi
    ;;
  *)
    echo "usage: sh -s prepare|activate" >&2
    exit 2
    ;;
esac
