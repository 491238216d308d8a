# What scripts/profile and scripts/instruction-budget share: examples/request_profile built
# for release and run under callgrind, only its requests counted (`request_profile::serve`,
# which runs the audit writer's task as well).

# Builds the example and sets BIN to it.
request_profile_build() {
    cargo build --quiet --release --example request_profile
    BIN=target/release/examples/request_profile
}

# The instructions of `request_profile VARIANT REQUESTS`; callgrind's output goes to DIR.
request_profile_instructions() { # dir variant requests
    valgrind --tool=callgrind --toggle-collect='request_profile::serve' \
        --callgrind-out-file="$1/callgrind.$2.$3" "$BIN" "$2" "$3" "$1" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

# The instructions of one request of VARIANT: (those of 2N requests - those of N) / N, start-up
# excluded, the median of REPEATS runs.
request_profile_per_request() { # dir variant n repeats
    local runs=() one two
    for _ in $(seq "$4"); do
        one=$(request_profile_instructions "$1" "$2" "$3")
        two=$(request_profile_instructions "$1" "$2" $(($3 * 2)))
        runs+=($(((two - one) / $3)))
    done
    printf '%s\n' "${runs[@]}" | sort -n | sed -n "$((($4 + 1) / 2))p"
}
