# Sourced by the bench scripts: start_bench_sshd starts a throwaway sshd on 127.0.0.1
# run by whoever runs the script, letting in the user the benchmark runs as (postgres
# when root), and exports SSH_PORT, SSH_USER and SSH_KEY. It registers its own clean-up
# in BENCH_SSHD_CLEANUP, for the caller's EXIT trap. Does nothing without sshd.
start_bench_sshd() {
    [[ -x /usr/sbin/sshd ]] && command -v ssh-keygen >/dev/null || return 0
    local dir user pam=no
    dir=$(mktemp -d /tmp/barman-bench-sshd.XXXXXX)
    chmod 755 "$dir"
    ssh-keygen -q -t ed25519 -N "" -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N "" -f "$dir/client_key"
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    chmod 644 "$dir/authorized_keys"
    user=$(id -un)
    if ((EUID == 0)); then
        user=postgres pam=yes
        chown postgres: "$dir/client_key"
        mkdir -p /run/sshd
    fi
    SSH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$dir/sshd_config" <<CONF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
UsePAM $pam
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $user
MaxSessions 64
MaxStartups 64:30:128
CONF
    /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    export SSH_PORT SSH_USER=$user SSH_KEY=$dir/client_key
    BENCH_SSHD_CLEANUP="kill \"\$(cat '$dir/sshd.pid' 2>/dev/null)\" 2>/dev/null; rm -rf '$dir'"
}
