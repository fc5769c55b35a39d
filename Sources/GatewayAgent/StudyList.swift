import Foundation
import ImagingIndex
import PatientTokens

/// One line of a hospital's study list: who (plain identifiers, which stay in the agent)
/// and the study's index fields. NDJSON objects or CSV with a header row, same names:
/// `residentId`, or `personCode`, or `name` + `birthDate` + `sex`; then the index record's
/// fields without `patientToken` (`modalitiesInStudy` in CSV is `CT\SR` or `CT|SR`).
public struct StudyRow: Sendable {
    public let line: Int
    public let identity: Result<TokenInput, NormalizationError>
    /// The record's fields with every identity field removed.
    public let fields: [String: JSONValue]
}

public enum StudyList {
    static let identityFields: Set<String> = ["residentId", "personCode", "name", "birthDate", "sex"]
    static let integerFields: Set<String> = ["numberOfStudyRelatedSeries", "numberOfStudyRelatedInstances", "patientBirthYear"]

    public static func read(path: String) throws(AgentError) -> [StudyRow] {
        guard let data = FileManager.default.contents(atPath: path) else { throw .input("cannot read \(path)") }
        let text = String(decoding: data, as: UTF8.self)
        let objects = path.hasSuffix(".csv") ? try csvObjects(text) : try ndjsonObjects(text)
        return objects.map { line, object in
            StudyRow(line: line, identity: identity(object), fields: object.filter { !identityFields.contains($0.key) }
                .merging(derived(object)) { given, _ in given })
        }
    }

    /// The identifier to tokenize: resident ID first, then person code, then the
    /// name|birthdate|sex key.
    public static func identity(_ o: [String: JSONValue]) -> Result<TokenInput, NormalizationError> {
        func text(_ key: String) -> String? {
            if case .string(let s)? = o[key], !s.trimmingCharacters(in: .whitespaces).isEmpty { return s }
            return nil
        }
        return Result { () throws(NormalizationError) in
            if let id = text("residentId") { return try TokenInput.residentID(id, birthDate: text("birthDate"), sex: text("sex")) }
            if let code = text("personCode") { return try TokenInput.personCode(code) }
            guard let name = text("name"), let born = text("birthDate"), let sex = text("sex") else { throw .empty }
            return try TokenInput.nameBirthSex(name: name, birthDate: born, sex: sex)
        }
    }

    /// What the index may know about the patient without identifying them: sex and birth year.
    static func derived(_ o: [String: JSONValue]) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        if case .string(let sex)? = o["sex"], ["M", "F"].contains(sex.uppercased()) { out["patientSex"] = .string(sex.uppercased()) }
        if case .string(let born)? = o["birthDate"], let year = Int(born.prefix(4)) { out["patientBirthYear"] = .number(Double(year)) }
        return out
    }

    static func ndjsonObjects(_ text: String) throws(AgentError) -> [(Int, [String: JSONValue])] {
        var out: [(Int, [String: JSONValue])] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            guard let object = JSONValue.parseObject(Array(line.utf8)) else {
                throw .input("line \(i + 1) is not a JSON object")
            }
            out.append((i + 1, object))
        }
        return out
    }

    static func csvObjects(_ text: String) throws(AgentError) -> [(Int, [String: JSONValue])] {
        let rows = try CSV.rows(text)
        guard let header = rows.first?.fields else { throw .input("the CSV file is empty") }
        var out: [(Int, [String: JSONValue])] = []
        for row in rows.dropFirst() where !row.fields.allSatisfy(\.isEmpty) {
            guard row.fields.count == header.count else {
                throw .input("line \(row.line) has \(row.fields.count) fields; the header has \(header.count)")
            }
            var object: [String: JSONValue] = [:]
            for (name, value) in zip(header, row.fields) where !value.isEmpty {
                if name == "modalitiesInStudy" {
                    object[name] = .array(value.split(whereSeparator: { $0 == "\\" || $0 == "|" }).map { .string(String($0)) })
                } else if integerFields.contains(name), let n = Int(value) {
                    object[name] = .number(Double(n))
                } else {
                    object[name] = .string(value)
                }
            }
            out.append((row.line, object))
        }
        return out
    }
}

/// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and line breaks.
enum CSV {
    struct Row { let line: Int; let fields: [String] }

    static func rows(_ text: String) throws(AgentError) -> [Row] {
        var rows: [Row] = [], fields: [String] = [], field = ""
        var quoted = false, line = 1, rowStart = 1
        var chars = Array(text.unicodeScalars).makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let p = pending { pending = nil; return p }
            return chars.next()
        }
        while let c = next() {
            if quoted {
                if c == "\"" {
                    let after = next()
                    if after == "\"" {
                        field.unicodeScalars.append("\"")
                    } else {
                        quoted = false
                        pending = after
                    }
                    continue
                }
                if c == "\n" { line += 1 }
                field.unicodeScalars.append(c)
                continue
            }
            switch c {
            case "\"" where field.isEmpty: quoted = true
            case ",": fields.append(field); field = ""
            case "\r": continue
            case "\n":
                fields.append(field)
                rows.append(Row(line: rowStart, fields: fields))
                fields = []; field = ""; line += 1; rowStart = line
            default: field.unicodeScalars.append(c)
            }
        }
        if quoted { throw .input("line \(rowStart): a quoted field is not closed") }
        if !field.isEmpty || !fields.isEmpty { fields.append(field); rows.append(Row(line: rowStart, fields: fields)) }
        return rows
    }
}
