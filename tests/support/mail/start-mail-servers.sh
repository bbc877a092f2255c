#!/bin/sh
# Starts a private Dovecot (IMAP with IDLE and CONDSTORE, LMTP, SASL for Postfix) and Postfix
# (SMTP delivering into Dovecot over LMTP, submission with STARTTLS and implicit TLS) on
# 127.0.0.1, all state inside DIR. Must run as root (Dovecot and Postfix drop privileges).
#
#   start-mail-servers.sh DIR BASE_PORT
#
# Ports: BASE imap (STARTTLS), +1 imaps, +2 lmtp, +3 dovecot auth (for Postfix), +4 smtp (MX,
# no auth), +5 submission (STARTTLS required, AUTH), +6 smtps (implicit TLS, AUTH).
# Users (password "secret-pass"): agent@, customer@, colleague@ and auditor@example.test. Mail lives in
# DIR/mail/<address>/Maildir. The CA that signed the servers' certificate is DIR/tls/ca.pem;
# DIR/tls/other-ca.pem is a CA that signed nothing (for "untrusted certificate" cases).
# Stop with stop-mail-servers.sh DIR.
set -eu
DIR=$1
BASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
IMAP=$BASE; IMAPS=$((BASE + 1)); LMTP=$((BASE + 2)); AUTH=$((BASE + 3))
SMTP=$((BASE + 4)); SUBMISSION=$((BASE + 5)); SMTPS=$((BASE + 6))

"$HERE/make-test-ca.sh" "$DIR/tls"

# Dovecot runs mail as nobody; the folders it writes must belong to that user.
mkdir -p "$DIR/dovecot/run" "$DIR/dovecot/state" "$DIR/mail"
chown nobody:nogroup "$DIR/mail"
chmod 755 "$DIR" "$DIR/dovecot"
HASH=$(doveadm pw -s SHA512-CRYPT -p secret-pass)
: > "$DIR/dovecot/users"
for user in agent@example.test customer@example.test colleague@example.test auditor@example.test; do
  echo "$user:$HASH::::::" >> "$DIR/dovecot/users"
done
# Dovecot briefly refuses users written in the same second it starts.
touch -d '-2 seconds' "$DIR/dovecot/users"

cat > "$DIR/dovecot/dovecot.conf" <<CONF
protocols = imap lmtp
listen = 127.0.0.1
base_dir = $DIR/dovecot/run
state_dir = $DIR/dovecot/state
log_path = $DIR/dovecot/dovecot.log
instance_name = dovecot-test-$BASE
ssl = yes
ssl_cert = <$DIR/tls/server.pem
ssl_key = <$DIR/tls/server.key
auth_mechanisms = plain login
auth_failure_delay = 0
disable_plaintext_auth = no
mail_location = maildir:$DIR/mail/%u/Maildir
first_valid_uid = 1
mail_uid = nobody
mail_gid = nogroup
mail_plugins = \$mail_plugins
protocol imap {
  imap_idle_notify_interval = 2 mins
}
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT $DIR/dovecot/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$DIR/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP
  }
}
service auth {
  inet_listener {
    address = 127.0.0.1
    port = $AUTH
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
# Settings a test adds for a while (MailServerFixture::restart_dovecot_with), e.g. no IDLE.
!include_try $DIR/dovecot/extra.conf
CONF
# Daemons must not keep the caller's stdout open (a caller reading it would wait forever).
dovecot -c "$DIR/dovecot/dovecot.conf" </dev/null >>"$DIR/start.log" 2>&1

# Postfix: its queue must not sit inside its configuration folder; chroot off everywhere.
mkdir -p "$DIR/postfix/etc" "$DIR/postfix/queue" "$DIR/postfix/data"
chown postfix "$DIR/postfix/data"
cat > "$DIR/postfix/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $DIR/postfix/queue
data_directory = $DIR/postfix/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.example.test
mydomain = example.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost =
virtual_mailbox_domains = example.test
virtual_transport = lmtp:inet:127.0.0.1:$LMTP
maillog_file_prefixes = /var, /dev/stdout, $DIR
maillog_file = $DIR/postfix/postfix.log
smtpd_tls_cert_file = $DIR/tls/server.pem
smtpd_tls_key_file = $DIR/tls/server.key
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:$AUTH
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtp_tls_security_level = none
biff = no
message_size_limit = 104857600
CONF
cat > "$DIR/postfix/etc/master.cf" <<CONF
127.0.0.1:$SMTP inet n - n - - smtpd
127.0.0.1:$SUBMISSION inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
127.0.0.1:$SMTPS inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
CONF
postfix -c "$DIR/postfix/etc" check
postfix -c "$DIR/postfix/etc" start </dev/null >>"$DIR/start.log" 2>&1
echo "mail servers up in $DIR (ports $BASE-$SMTPS)"
