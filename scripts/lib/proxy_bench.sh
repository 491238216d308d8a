# What scripts/bench-proxy and scripts/profile-proxy share: the upstream's RS256 key, its
# JWKS and a token signed with it, the proxy's configuration (the token verified, one scope
# rule, JSON lines), and free ports. Sourced, not run.

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# $1: the directory; $2: bench_server's binary. Writes DIR/public.pem, DIR/tokens.txt,
# DIR/jwks.json and DIR/proxy.toml, and sets TOKEN.
proxy_bench_setup() {
    local dir=$1 upstream=$2
    "$upstream" --keygen 1 --dir "$dir" >/dev/null
    python3 - "$dir" <<'PY'
import base64, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
d = sys.argv[1]
numbers = load_pem_public_key(open(f"{d}/public.pem", "rb").read()).public_numbers()
b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()
jwk = {"kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig", "n": b64(numbers.n), "e": b64(numbers.e)}
json.dump({"keys": [jwk]}, open(f"{d}/jwks.json", "w"))
PY
    TOKEN=$(head -n 1 "$dir/tokens.txt")
    cat > "$dir/proxy.toml" <<TOML
service_name = "bench-proxy"
[endpoints]
defaults = false
[jwt]
jwks_file = "$dir/jwks.json"
issuers = ["https://issuer.bench"]
audiences = ["bench-api"]
[[route]]
path = "/api/orders"
scopes = ["orders:read"]
TOML
}
