#!/bin/sh
# Stops what start-mail-servers.sh DIR started. Safe to call twice.
DIR=$1
[ -f "$DIR/postfix/etc/main.cf" ] && postfix -c "$DIR/postfix/etc" stop >/dev/null 2>&1
[ -f "$DIR/dovecot/dovecot.conf" ] && doveadm -c "$DIR/dovecot/dovecot.conf" stop >/dev/null 2>&1
exit 0
