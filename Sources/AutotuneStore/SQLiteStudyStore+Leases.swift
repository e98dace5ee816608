public import Autotune
import Foundation
import GRDB

/// GPU leases and port reservations as rows, so that every `autotune` process using this database file sees
/// them. Writes run in GRDB's serialized writer inside `BEGIN IMMEDIATE`, so two processes cannot both see a
/// GPU free and both take it.
extension SQLiteStudyStore: ResourceLedger {
    /// Leases `count` free GPUs among `candidates`, lowest index first, after dropping dead holders' leases.
    public func leaseGPUs(
        _ count: Int,
        among candidates: [Int],
        holder: LeaseHolder,
        isAlive: @escaping @Sendable (LeaseHolder) -> Bool
    ) async throws -> [Int]? {
        try await write { db in
            let held = try Self.liveHolds(of: "gpu", host: holder.host, isAlive: isAlive, db: db)
            guard let chosen = LeaseChoice.gpus(count, among: candidates, held: held) else { return nil }
            for index in chosen { try Self.insert(kind: "gpu", id: index, holder: holder, db: db) }
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
        try await write { db in
            let held = try Self.liveHolds(of: "port", host: holder.host, isAlive: isAlive, db: db)
            guard let port = LeaseChoice.port(in: range, held: held, isBindable: isBindable) else { return nil }
            try Self.insert(kind: "port", id: port, holder: holder, db: db)
            return port
        }
    }

    /// Releases the holder's GPUs and port.
    ///
    /// A synchronous write on purpose: release runs when a trial ends, often because its task was cancelled,
    /// and GRDB's async writes refuse to start in a cancelled task. The write is one short DELETE.
    public func release(_ holder: LeaseHolder) async throws {
        try releaseNow(holder)
    }

    private func releaseNow(_ holder: LeaseHolder) throws {
        try writeNow { db in
            try db.execute(
                sql: "DELETE FROM resource_leases WHERE host = ? AND study = ? AND trial = ?",
                arguments: [holder.host, holder.study, holder.trial]
            )
        }
    }

    /// The leases on `host`.
    public func leases(host: String) async throws -> [ResourceLease] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM resource_leases WHERE host = ? ORDER BY kind, resource_id",
                arguments: [host]
            ).map { row in
                let id: Int = row["resource_id"]
                let kind: String = row["kind"]
                return ResourceLease(
                    resource: kind == "gpu" ? .gpu(id) : .port(id),
                    holder: LeaseHolder(
                        host: row["host"], pid: row["pid"], study: row["study"], trial: row["trial"],
                        started: row["started"])
                )
            }
        }
    }

    private static func insert(kind: String, id: Int, holder: LeaseHolder, db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO resource_leases (host, kind, resource_id, pid, study, trial, acquired_at, started)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [holder.host, kind, id, holder.pid, holder.study, holder.trial, Date(), holder.started]
        )
    }

    /// The ids of `kind` held on `host`, after dropping the leases of processes that are gone.
    private static func liveHolds(of kind: String, host: String, isAlive: (LeaseHolder) -> Bool, db: Database) throws
        -> Set<Int>
    {
        try dropDeadLeases(host: host, isAlive: isAlive, db: db)
        return Set(
            try Int.fetchAll(
                db,
                sql: "SELECT resource_id FROM resource_leases WHERE host = ? AND kind = ?",
                arguments: [host, kind]
            )
        )
    }

    /// Leases whose holder is gone (the runner crashed and the trial's processes ended) are free again.
    private static func dropDeadLeases(host: String, isAlive: (LeaseHolder) -> Bool, db: Database) throws {
        let holders = try Row.fetchAll(
            db, sql: "SELECT DISTINCT pid, study, trial, started FROM resource_leases WHERE host = ?", arguments: [host]
        ).map {
            LeaseHolder(host: host, pid: $0["pid"], study: $0["study"], trial: $0["trial"], started: $0["started"])
        }
        for holder in holders where !isAlive(holder) {
            try db.execute(
                sql: "DELETE FROM resource_leases WHERE host = ? AND pid = ? AND study = ? AND trial = ?",
                arguments: [host, holder.pid, holder.study, holder.trial])
        }
    }
}
