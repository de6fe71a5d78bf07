// A status run allocates many small strings (one set per migration and per
// ledger row) on several threads; mimalloc makes that markedly cheaper than
// the system allocator (see docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(envgate::cli::main());
}
