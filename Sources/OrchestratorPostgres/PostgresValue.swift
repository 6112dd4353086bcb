import CLibPQ

/// A parameter of a statement; `nil` in the parameter list is SQL NULL.
///
/// Numbers and booleans are sent in text form with their type fixed (int8, float8, bool), so they arrive exactly;
/// text is sent with its type left for the server to infer from the statement (as an unquoted literal would be);
/// bytes are sent in binary as `bytea`, so every byte value, NUL and 0xFF included, arrives unchanged.
public enum PostgresValue: Sendable, Equatable {
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case text(String)
    case bytes([UInt8])
}

/// A column of a result: its name and the OID of its type (e.g. 20 for int8, 17 for bytea).
public struct PostgresColumn: Sendable, Equatable {
    public let name: String
    public let typeOID: UInt32
}

/// The rows and command status of one statement, copied out of libpq (its result is already cleared).
public struct PostgresResult: Sendable {
    public let columns: [PostgresColumn]
    public let rows: [PostgresRow]
    /// The command tag, e.g. `INSERT 0 1`, `UPDATE 2`, `SELECT 3`.
    public let command: String
    /// Rows inserted, updated, deleted or selected (0 for commands that touch none).
    public let affectedRows: Int

    /// The only row's first column, for `SELECT one_value` statements; nil when there is no row.
    public var scalar: PostgresCell? { rows.first.map { $0[0] } }
}

/// One row of a result. Cells are read by position (`row[0]`) or by column name (`row.cell("id")`).
public struct PostgresRow: Sendable {
    public let columns: [PostgresColumn]
    /// Each cell in PostgreSQL's text form; nil is NULL.
    let cells: [[UInt8]?]

    public subscript(index: Int) -> PostgresCell { PostgresCell(column: columns[index], text: cells[index]) }

    public func cell(_ name: String) throws(PostgresError) -> PostgresCell {
        guard let index = columns.firstIndex(where: { $0.name == name }) else {
            throw PostgresError(kind: .client, message: "the result has no column \"\(name)\"")
        }
        return self[index]
    }
}

/// One value of a result, read as the type the caller expects. Every reader returns nil for NULL and throws a
/// `.client` error when the value is not of that type.
public struct PostgresCell: Sendable {
    public let column: PostgresColumn
    /// The value in PostgreSQL's text form; nil is NULL.
    public let text: [UInt8]?

    public var isNull: Bool { text == nil }

    public func int64() throws(PostgresError) -> Int64? {
        guard let text else { return nil }
        guard let value = Int64(String(decoding: text, as: UTF8.self)) else { throw mismatch("a 64-bit integer") }
        return value
    }

    public func double() throws(PostgresError) -> Double? {
        guard let text else { return nil }
        let string = String(decoding: text, as: UTF8.self)
        switch string {
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        case "NaN": return .nan
        default:
            guard let value = Double(string) else { throw mismatch("a number") }
            return value
        }
    }

    public func bool() throws(PostgresError) -> Bool? {
        guard let text else { return nil }
        switch text {
        case Array("t".utf8): return true
        case Array("f".utf8): return false
        default: throw mismatch("a boolean")
        }
    }

    /// The value's text form, whatever its type.
    public func string() throws(PostgresError) -> String? {
        guard let text else { return nil }
        guard let value = String(validating: text, as: UTF8.self) else { throw mismatch("UTF-8 text") }
        return value
    }

    /// The bytes of a `bytea` value. Other types are refused rather than handed over as their text's bytes.
    public func bytes() throws(PostgresError) -> [UInt8]? {
        guard let text else { return nil }
        guard column.typeOID == PostgresType.bytea else { throw mismatch("bytea") }
        guard let bytes = PostgresCell.unescapeBytea(text) else { throw mismatch("bytea") }
        return bytes
    }

    /// The value as the `PostgresValue` its column type suggests (integers, floats and numerics, booleans, bytea;
    /// anything else as text).
    public func value() throws(PostgresError) -> PostgresValue? {
        guard !isNull else { return nil }
        switch column.typeOID {
        case PostgresType.int2, PostgresType.int4, PostgresType.int8, PostgresType.oid: return try int64().map(PostgresValue.int)
        case PostgresType.float4, PostgresType.float8, PostgresType.numeric: return try double().map(PostgresValue.double)
        case PostgresType.bool: return try bool().map(PostgresValue.bool)
        case PostgresType.bytea: return try bytes().map(PostgresValue.bytes)
        default: return try string().map(PostgresValue.text)
        }
    }

    private func mismatch(_ expected: String) -> PostgresError {
        let shown = String(decoding: (text ?? []).prefix(40), as: UTF8.self)
        return PostgresError(
            kind: .client, message: "column \"\(column.name)\" (type OID \(column.typeOID)) holds \"\(shown)\", not \(expected)")
    }

    /// bytea's text form: hex (`\\x00ff`, the default since 9.0) or, under `bytea_output = escape`, octal escapes;
    /// libpq reads both.
    static func unescapeBytea(_ text: [UInt8]) -> [UInt8]? {
        var length = 0
        guard let bytes = (text + [0]).withUnsafeBufferPointer({ orch_PQunescapeBytea($0.baseAddress, &length) }) else { return nil }
        defer { orch_PQfreemem(bytes) }
        return Array(UnsafeBufferPointer(start: bytes, count: length))
    }
}

/// The type OIDs this library sends or reads specially (pg_type.oid; fixed since PostgreSQL 7).
public enum PostgresType {
    public static let bool: UInt32 = 16
    public static let bytea: UInt32 = 17
    public static let int8: UInt32 = 20
    public static let int2: UInt32 = 21
    public static let int4: UInt32 = 23
    public static let text: UInt32 = 25
    public static let oid: UInt32 = 26
    public static let float4: UInt32 = 700
    public static let float8: UInt32 = 701
    public static let numeric: UInt32 = 1700
}
