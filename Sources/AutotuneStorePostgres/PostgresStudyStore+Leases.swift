public import Autotune
import Foundation
import PostgresNIO

/// GPU leases and port reservations as rows keyed by host, so workers on several machines share one table and
/// each leases only its own machine's GPUs. A transaction-scoped advisory lock per host serialises the
/// read-then-write, as `BEGIN IMMEDIATE` does for SQLite.
extension PostgresStudyStore {
    /// Leases `count` free GPUs among `candidates`, lowest index first, after dropping dead holders' leases.
    public func leaseGPUs(
        _ count: Int,
        among candidates: [Int],
        holder: LeaseHolder,
        isAlive: @escaping @Sendable (LeaseHolder) -> Bool
    ) async throws -> [Int]? {
        try await transaction { connection in
            let held = try await self.liveHolds(of: "gpu", host: holder.host, isAlive: isAlive, connection: connection)
            guard let chosen = LeaseChoice.gpus(count, among: candidates, held: held) else { return nil }
            for index in chosen {
                try await self.insert(kind: "gpu", id: index, holder: holder, connection: connection)
            }
            return chosen
        }
    }

    /// Reserves the lowest free, bindable port of `range`.
    public func reservePort(
        in range: ClosedRange<Int>,
        holder: LeaseHolder,
        isAlive: @escaping @Sendable (LeaseHolder) -> Bool,
        isBindable: @escaping @Sendable (Int) -> Bool
    ) async throws -> Int? {
        try await transaction { connection in
            let held = try await self.liveHolds(of: "port", host: holder.host, isAlive: isAlive, connection: connection)
            guard let port = LeaseChoice.port(in: range, held: held, isBindable: isBindable) else { return nil }
            try await self.insert(kind: "port", id: port, holder: holder, connection: connection)
            return port
        }
    }

    /// Releases the holder's GPUs and port; runs even when the trial's task is cancelled.
    public func release(_ holder: LeaseHolder) async throws {
        let host = holder.host
        let study = holder.study
        let trial = holder.trial
        // A cancelled trial still gives its leases back: the delete runs in a task of its own.
        _ = try await Task {
            try await self.transaction { connection in
                try await connection.rows(
                    "DELETE FROM autotune_leases WHERE host = \(host) AND study = \(study) AND trial = \(trial)",
                    logger: self.logger
                )
            }
        }.value
    }

    /// The leases on `host`.
    public func leases(host: String) async throws -> [ResourceLease] {
        try await transaction { connection in
            try await connection.rows(
                "SELECT * FROM autotune_leases WHERE host = \(host) ORDER BY kind, resource_id", logger: self.logger
            ).map { row in
                let columns = row.makeRandomAccess()
                let id = try columns["resource_id"].decode(Int.self)
                let kind = try columns["kind"].decode(String.self)
                return ResourceLease(
                    resource: kind == "gpu" ? .gpu(id) : .port(id),
                    holder: LeaseHolder(
                        host: try columns["host"].decode(String.self),
                        pid: Int32(try columns["pid"].decode(Int.self)),
                        study: try columns["study"].decode(String.self),
                        trial: try columns["trial"].decode(Int.self),
                        started: try columns["started"].decode(String?.self)
                    )
                )
            }
        }
    }

    private func insert(kind: String, id: Int, holder: LeaseHolder, connection: PostgresConnection) async throws {
        let host = holder.host
        let pid = Int(holder.pid)
        let study = holder.study
        let trial = holder.trial
        let started = holder.started
        try await connection.rows(
            """
            INSERT INTO autotune_leases (host, kind, resource_id, pid, study, trial, acquired_at, started)
            VALUES (\(host), \(kind), \(id), \(pid), \(study), \(trial), now(), \(started))
            """,
            logger: logger
        )
    }

    /// The ids of `kind` held on `host`, after dropping the leases of this host's processes that are gone.
    private func liveHolds(
        of kind: String,
        host: String,
        isAlive: (LeaseHolder) -> Bool,
        connection: PostgresConnection
    ) async throws -> Set<Int> {
        try await connection.rows("SELECT pg_advisory_xact_lock(hashtext(\(host)))", logger: logger)
        let holders = try await connection.rows(
            "SELECT DISTINCT pid, study, trial, started FROM autotune_leases WHERE host = \(host)", logger: logger
        ).map { row in
            let (pid, study, trial, started) = try row.decode((Int, String, Int, String?).self)
            return LeaseHolder(host: host, pid: Int32(pid), study: study, trial: trial, started: started)
        }
        // A holder is gone once its runner and its trial's processes are: a dead runner's experiments may run on.
        for holder in holders where !isAlive(holder) {
            let pid = Int(holder.pid)
            try await connection.rows(
                """
                DELETE FROM autotune_leases
                WHERE host = \(host) AND pid = \(pid) AND study = \(holder.study) AND trial = \(holder.trial)
                """,
                logger: logger)
        }
        let ids = try await connection.rows(
            "SELECT resource_id FROM autotune_leases WHERE host = \(host) AND kind = \(kind)", logger: logger
        ).map { try $0.decode(Int.self) }
        return Set(ids)
    }
}
