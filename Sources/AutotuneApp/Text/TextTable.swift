import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Aligned text columns, as the terminal views print them.
public enum TextTable {
    /// `rows` (the first is the header) in columns two spaces apart; the last column is not padded.
    public static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// `text` with every line indented by `prefix`.
    public static func indent(_ text: String, by prefix: String = "  ") -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { prefix + $0 }.joined(separator: "\n")
    }
}

/// RFC 4180 CSV.
public enum CSV {
    /// `rows` as CSV lines: a cell with a comma, quote or line break is quoted, quotes doubled.
    public static func render(_ rows: [[String]]) -> String {
        rows.map { row in
            row.map { cell in
                cell.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline })
                    ? "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : cell
            }.joined(separator: ",")
        }.joined(separator: "\n")
    }
}

/// A table laid out for a terminal of a given width, as `trials` prints it on a terminal: long headers wrapped
/// at their underscores, a note for each row (a trial's failure) on its own indented line cut to the width, and,
/// when the columns still do not fit, one block per row with a line per column (psql's expanded display).
public struct FittedTable: Sendable {
    /// The terminal's width in columns.
    public var width: Int
    /// Always one block per row.
    public var expanded: Bool

    /// Creates a layout for a terminal `width` columns wide.
    public init(width: Int, expanded: Bool = false) {
        self.width = max(20, width)
        self.expanded = expanded
    }

    /// `header` and `rows` in columns two spaces apart, each row followed by its note (when it has one);
    /// `title` names a row's block in the expanded display.
    public func render(header: [String], rows: [[String]], notes: [String?], title: (Int) -> String) -> String {
        var widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        let headerLines = header.indices.map { column -> [String] in
            let pieces = Self.pieces(header[column])
            widths[column] = max(widths[column], pieces.map(\.count).max() ?? 0)
            return Self.pack(pieces, into: widths[column])
        }
        let total = widths.reduce(0, +) + 2 * max(0, widths.count - 1)
        if expanded || total > width {
            return renderExpanded(header: header, rows: rows, notes: notes, title: title)
        }
        let depth = headerLines.map(\.count).max() ?? 1
        var lines: [String] = []
        for line in 0..<depth {
            // Bottom-aligned, so every header's last piece sits on the line above the values.
            lines.append(
                Self.join(
                    headerLines.indices.map { column in
                        let pieces = headerLines[column]
                        let index = line - (depth - pieces.count)
                        return index >= 0 ? pieces[index] : ""
                    }, widths: widths))
        }
        for (index, row) in rows.enumerated() {
            lines.append(Self.join(row, widths: widths))
            if let note = notes[index], !note.isEmpty { lines.append(cut("    " + note)) }
        }
        return lines.joined(separator: "\n")
    }

    private func renderExpanded(header: [String], rows: [[String]], notes: [String?], title: (Int) -> String)
        -> String
    {
        let names = header + ["error"]
        let nameWidth = names.map(\.count).max() ?? 0
        var lines: [String] = []
        for (index, row) in rows.enumerated() {
            let heading = "── \(title(index)) "
            lines.append(heading + String(repeating: "─", count: max(3, min(width, 60) - heading.count)))
            for (column, cell) in row.enumerated() where !cell.isEmpty {
                lines += field(header[column], cell, nameWidth: nameWidth)
            }
            if let note = notes[index], !note.isEmpty { lines += field("error", note, nameWidth: nameWidth) }
        }
        return lines.joined(separator: "\n")
    }

    /// `name  value`, the value wrapped under itself up to three lines, the third cut with `…`.
    private func field(_ name: String, _ value: String, nameWidth: Int) -> [String] {
        let indent = nameWidth + 2
        let room = max(10, width - indent)
        var rest = Substring(value)
        var lines: [String] = []
        while !rest.isEmpty, lines.count < 3 {
            var piece = rest.prefix(room)
            if piece.count < rest.count, lines.count < 2, let space = piece.lastIndex(of: " "),
                piece.distance(from: piece.startIndex, to: space) > room / 2
            {
                piece = rest[rest.startIndex..<space]
            }
            let prefix =
                lines.isEmpty
                ? name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                : String(repeating: " ", count: indent)
            lines.append(cut(prefix + piece))
            rest = rest[piece.endIndex...].drop { $0 == " " }
        }
        if !rest.isEmpty, let last = lines.popLast() { lines.append(last.count < width ? last + "…" : cut(last + "…")) }
        return lines
    }

    /// `line` cut to the width with `…`.
    public func cut(_ line: String) -> String {
        line.count <= width ? line : String(line.prefix(width - 1)) + "…"
    }

    /// A header's pieces: split after each `_` or `.`, so `max_num_seqs` can stand as `max_num_` over `seqs`.
    static func pieces(_ name: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        for character in name {
            current.append(character)
            if character == "_" || character == "." {
                pieces.append(current)
                current = ""
            }
        }
        if !current.isEmpty || pieces.isEmpty { pieces.append(current) }
        return pieces
    }

    /// Pieces packed greedily into lines of at most `width` characters.
    static func pack(_ pieces: [String], into width: Int) -> [String] {
        var lines: [String] = []
        for piece in pieces {
            if let last = lines.last, last.count + piece.count <= width {
                lines[lines.count - 1] = last + piece
            } else {
                lines.append(piece)
            }
        }
        return lines
    }

    private static func join(_ cells: [String], widths: [Int]) -> String {
        var line = cells.enumerated().map { index, cell in
            cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
        while line.last == " " { line.removeLast() }
        return line
    }
}

/// The width of the terminal standard output is, or `nil` when standard output is not a terminal (a pipe, a
/// file): then tables are printed whole, for whatever reads them.
public func terminalWidth() -> Int? {
    guard isatty(STDOUT_FILENO) == 1 else { return nil }
    var size = winsize()
    if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
    if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns > 0 { return columns }
    return 80
}
