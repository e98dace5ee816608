import Autotune
import AutotuneApp
import AutotuneRunner
import AutotuneTesting
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `autotune gpus` reads one database's leases; a GPU a study of another database holds shows through the host's
/// lock on it, and only while its holder lives.
@Suite struct GPUsViewTests {
    @Test func aGPUAnotherDatabasesStudyHoldsShowsWhoHoldsIt() async throws {
        try await withDirectory { directory in
            let locks = HostLocks(directory: directory.appendingPathComponent("locks"))
            let me = RunnerIdentity.current
            let holder = LeaseHolder(host: me.host, pid: me.pid, study: "elsewhere", trial: 3, started: me.started)
            #expect(try locks.tryLock(HostLocks.name(of: GPU(index: 1)), for: holder, token: "at-elsewhere"))
            // A killed runner's record, whose trial left no process: not a holder.
            let dead = LeaseHolder(host: me.host, pid: 999_999, study: "gone", trial: 1)
            try JSONEncoder().encode(HostLocks.Record(holder: dead, token: "at-gone")).write(
                to: locks.directory.appendingPathComponent(HostLocks.name(of: GPU(index: 0)) + ".lock"))
            let location = StoreLocation(flag: directory.appendingPathComponent("none.sqlite").path)
            let view = try await GPUsView(location: location, inventory: FixedGPUInventory(count: 2), locks: locks)
            let rows = view.text.split(separator: "\n").map(String.init)
            let first = try #require(rows.first { $0.hasPrefix("0 ") })
            let second = try #require(rows.first { $0.hasPrefix("1 ") })
            #expect(!first.contains("gone"))
            #expect(second.contains("elsewhere trial 3 (pid \(me.pid), another database)"))
            locks.release(holder, token: "at-elsewhere")
            let after = try await GPUsView(location: location, inventory: FixedGPUInventory(count: 2), locks: locks)
            #expect(!after.text.contains("elsewhere"))
        }
    }
}
