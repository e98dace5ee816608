public import Autotune
public import AutotuneRunner

/// `autotune gpus`: the GPUs nvidia-smi finds on this machine and the leases trials hold on them and on ports.
public struct GPUsView: Sendable {
    /// What discovery found.
    public var found: GPUDiscovery.Result
    /// The leases held on this host.
    public var leases: [ResourceLease]
    /// Who holds each discovered GPU by the host's lock, where that is a live holder: a study of another database
    /// shows only there.
    public var locked: [Int: HostLocks.Record]

    /// Discovers the GPUs with `inventory`, reads this host's leases from `location` (none when there is no
    /// database yet) and the GPUs' lock files from `locks`.
    public init(
        location: StoreLocation, inventory: any GPUInventory = NvidiaSMIInventory(), locks: HostLocks = .host
    ) async throws {
        found = await inventory.discover()
        let host = RunnerIdentity.current.host
        leases = location.exists ? try await location.withStore(.readOnly) { try await $0.leases(host: host) } : []
        var locked: [Int: HostLocks.Record] = [:]
        for gpu in found.gpus {
            if let record = locks.record(of: HostLocks.name(of: gpu)), record.isLive { locked[gpu.index] = record }
        }
        self.locked = locked
    }

    /// The table of GPUs, then leases on what it does not list.
    public var text: String {
        var lines: [String] = []
        if let note = found.note { lines.append("No GPUs: \(note).") }
        var rows = [["gpu", "name", "memory free/total MiB", "util %", "leased by"]]
        for gpu in found.gpus {
            let holder = leases.first { $0.resource == .gpu(gpu.index) }?.holder
            let other = locked[gpu.index].map {
                "\($0.holder.study) trial \($0.holder.trial) (pid \($0.holder.pid), another database)"
            }
            rows.append([
                String(gpu.index), gpu.name ?? "-",
                "\(gpu.memoryFreeMiB.map { String(Int($0)) } ?? "?")/\(gpu.memoryTotalMiB.map { String(Int($0)) } ?? "?")",
                gpu.utilizationPercent.map { String(Int($0)) } ?? "?",
                holder.map { "\($0.study) trial \($0.trial) (pid \($0.pid))" } ?? other ?? "-",
            ])
        }
        if !found.gpus.isEmpty { lines.append(TextTable.render(rows)) }
        for lease in leases where !found.gpus.contains(where: { .gpu($0.index) == lease.resource }) {
            switch lease.resource {
            case .gpu(let index):
                lines.append("GPU \(index) leased by \(lease.holder.study) trial \(lease.holder.trial)")
            case .port(let port):
                lines.append("port \(port) reserved by \(lease.holder.study) trial \(lease.holder.trial)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
