// The C# host test: an RM-like host written in C# (in-memory contracts, parameters, records,
// scripted authentication and CPF screens) that drives the built plugin through the P/Invoke
// binding in include/dotnet/TaeEdu.cs, against a running tae-sim.
//
// Usage: mono HostTest.exe <tae-sim base URL>
// Exit code 0 when every check passes; the last line is "N passed, M failed".
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Text;

namespace TaeEdu.Tests
{
    class Contract
    {
        public string Key, CodContrato, Ra, Student, Course, Period, Status;
        public string RespName, RespCpf, RespEmail;

        public Dictionary<string, object> ToJson()
        {
            return new Dictionary<string, object>
            {
                { "key", Key }, { "data_server", "EduContratoData" },
                { "codcoligada", 1L }, { "codfilial", 1L }, { "codcontrato", CodContrato }, { "ra", Ra },
                { "student_name", Student }, { "course", Course }, { "period", Period }, { "status", Status },
                { "financial_responsible", new Dictionary<string, object> {
                    { "code", "R" + CodContrato }, { "name", RespName }, { "cpf", RespCpf }, { "email", RespEmail } } },
            };
        }
    }

    /// <summary>The host's services over in-memory state.</summary>
    class MemoryHost : IHostServices
    {
        public readonly string TaeUrl;
        public readonly List<Contract> Contracts = new List<Contract>();
        public readonly Dictionary<string, Dictionary<string, object>> Records = new Dictionary<string, Dictionary<string, object>>();
        public readonly List<string> LogLines = new List<string>();
        public int AuthPrompts, CpfPrompts, ProgressCalls;
        public readonly List<string> Methods = new List<string>();
        public const string RmUserEmail = "secretaria.dotnet@escola.example";
        public const string AdminEmail = "admin@escola.example";
        public const string AdminPassword = "Admin@123";

        public MemoryHost(string taeUrl) { TaeUrl = taeUrl; }

        // Leases (docs/abi.md, "Leases") in memory, with the "database" clock movable by the test.
        public class Lease
        {
            public string Token;
            public Dictionary<string, object> Owner;
            public DateTime Since, ExpiresAt;
        }
        public readonly Dictionary<string, Lease> Leases = new Dictionary<string, Lease>();
        public TimeSpan ClockOffset = TimeSpan.Zero;
        public DateTime Now { get { return DateTime.UtcNow + ClockOffset; } }
        public int Acquires, Renews, Releases, FencedPuts;
        public string LastFenceAnswer;
        /// <summary>When set, user.has_permission fails with this whole JSON body.</summary>
        public string FailPermissionWith;
        public readonly List<string> AcquireTokens = new List<string>();
        /// <summary>The lease_token of each records.put (null when the write carried none).</summary>
        public readonly List<string> PutTokens = new List<string>();

        static string LeaseKey(string dataServer, string key) { return dataServer + "|" + key; }
        static string Ts(DateTime t) { return t.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture); }

        static IEnumerable<Dictionary<string, object>> ContractRefs(Dictionary<string, object> req)
        {
            object list;
            if (!req.TryGetValue("contracts", out list) || list == null) return null;
            return MiniJson.Arr(list).Select(MiniJson.Obj).ToList();
        }

        static Dictionary<string, object> Ref(string dataServer, string key)
        {
            return new Dictionary<string, object> { { "data_server", dataServer }, { "key", key } };
        }

        public bool Holds(string dataServer, string key, string token)
        {
            Lease lease;
            return Leases.TryGetValue(LeaseKey(dataServer, key), out lease) && lease.Token == token && lease.ExpiresAt > Now;
        }

        /// <summary>Another application server holds a contract (written straight into the "database").</summary>
        public void PreLease(string key, string runId, string user, string machine, TimeSpan age, TimeSpan left)
        {
            Leases[LeaseKey("EduContratoData", key)] = new Lease
            {
                Token = runId,
                Owner = new Dictionary<string, object> {
                    { "run_id", runId }, { "session", "outra-sessao" }, { "user", user }, { "machine", machine }, { "option", "send" } },
                Since = Now - age,
                ExpiresAt = Now + left,
            };
        }

        byte[] Acquire(Dictionary<string, object> req)
        {
            Acquires++;
            var owner = MiniJson.Obj(req["owner"]);
            string runId = (string)owner["run_id"];
            long ttl = (long)req["ttl_secs"];
            var granted = new List<object>();
            var held = new List<object>();
            foreach (var c in ContractRefs(req))
            {
                string ds = (string)c["data_server"], key = (string)c["key"];
                Lease lease;
                bool live = Leases.TryGetValue(LeaseKey(ds, key), out lease) && lease.ExpiresAt > Now;
                if (live && (string)lease.Owner["run_id"] != runId)
                {
                    held.Add(new Dictionary<string, object> {
                        { "data_server", ds }, { "key", key }, { "holder", lease.Owner },
                        { "since", Ts(lease.Since) }, { "expires_at", Ts(lease.ExpiresAt) } });
                    continue;
                }
                Leases[LeaseKey(ds, key)] = new Lease
                {
                    Token = runId, Owner = owner, Since = live ? lease.Since : Now, ExpiresAt = Now.AddSeconds(ttl),
                };
                granted.Add(Ref(ds, key));
            }
            AcquireTokens.Add(runId);
            return Json(new Dictionary<string, object> { { "token", runId }, { "granted", granted }, { "held", held } });
        }

        byte[] Renew(Dictionary<string, object> req)
        {
            Renews++;
            string token = (string)req["token"];
            long ttl = (long)req["ttl_secs"];
            var renewed = new List<object>();
            var lost = new List<object>();
            foreach (var c in ContractRefs(req))
            {
                string ds = (string)c["data_server"], key = (string)c["key"];
                if (Holds(ds, key, token))
                {
                    Leases[LeaseKey(ds, key)].ExpiresAt = Now.AddSeconds(ttl);
                    renewed.Add(Ref(ds, key));
                }
                else lost.Add(Ref(ds, key));
            }
            return Json(new Dictionary<string, object> { { "renewed", renewed }, { "lost", lost } });
        }

        byte[] Release(Dictionary<string, object> req)
        {
            Releases++;
            string token = (string)req["token"];
            var only = ContractRefs(req);
            foreach (var entry in Leases.Where(e => e.Value.Token == token).ToList())
            {
                if (only == null || only.Any(c => LeaseKey((string)c["data_server"], (string)c["key"]) == entry.Key))
                    Leases.Remove(entry.Key);
            }
            return Json(new Dictionary<string, object>());
        }

        public Dictionary<string, object> Params()
        {
            return new Dictionary<string, object>
            {
                { "auth_url", TaeUrl + "/identityintegration" },
                { "api_url", TaeUrl },
                { "web_login_url", TaeUrl + "/webapptotvssign/#/auth/login?external=true" },
                { "service_user", AdminEmail },
                { "service_password", AdminPassword },
                { "request_timeout_secs", 30L },
                { "max_concurrency", 4L },
                { "document_name_template", "Contrato {codcontrato} - {aluno}" },
            };
        }

        static byte[] Json(object value) { return Encoding.UTF8.GetBytes(MiniJson.Write(value)); }

        public byte[] Call(string method, byte[] request)
        {
            Methods.Add(method);
            var req = MiniJson.Obj(MiniJson.Parse(Encoding.UTF8.GetString(request)));
            switch (method)
            {
                case "user.current":
                    return Json(new Dictionary<string, object> {
                        { "login", "secretaria" }, { "name", "Secretária .NET" }, { "email", RmUserEmail }, { "interactive", true } });
                case "user.has_permission":
                    if (FailPermissionWith != null) throw new HostServiceException("mensagem-que-nao-deve-aparecer", FailPermissionWith);
                    return Json(new Dictionary<string, object> { { "granted", true } });
                case "params.get":
                    return Json(new Dictionary<string, object> { { "values", Params() } });
                case "contracts.get":
                {
                    var keys = MiniJson.Arr(req["keys"]).Cast<string>().ToList();
                    var found = Contracts.Where(c => keys.Contains(c.Key)).Select(c => (object)c.ToJson()).ToList();
                    var missing = keys.Where(k => !Contracts.Any(c => c.Key == k)).Cast<object>().ToList();
                    return Json(new Dictionary<string, object> { { "contracts", found }, { "missing", missing } });
                }
                case "contracts.find":
                    return Json(new Dictionary<string, object> { { "contracts", Contracts.Select(c => (object)c.ToJson()).ToList() } });
                case "contracts.set_status":
                {
                    var contract = Contracts.FirstOrDefault(c => c.Key == (string)req["key"]);
                    if (contract == null) throw new HostServiceException("contrato desconhecido: " + req["key"]);
                    contract.Status = (string)req["status"];
                    return Json(new Dictionary<string, object>());
                }
                case "report.render":
                {
                    var contract = Contracts.FirstOrDefault(c => c.Key == (string)req["contract_key"]);
                    if (contract == null) throw new HostServiceException("contrato desconhecido: " + req["contract_key"]);
                    return Pdf.Contract(contract);
                }
                case "file.read":
                    return File.ReadAllBytes((string)req["path"]);
                case "ui.authenticate":
                    AuthPrompts++;
                    return Json(new Dictionary<string, object> {
                        { "cancelled", false }, { "email", AdminEmail }, { "password", AdminPassword } });
                case "ui.ask_cpf":
                    CpfPrompts++;
                    return Json(new Dictionary<string, object> { { "cancelled", false }, { "cpf", "246.813.579-28" } });
                case "records.get":
                {
                    var keys = MiniJson.Arr(req["keys"]).Cast<string>().ToList();
                    var found = Records.Values.Where(r => keys.Contains((string)r["record_key"])).Cast<object>().ToList();
                    return Json(new Dictionary<string, object> { { "records", found } });
                }
                case HostMethods.RecordsPut:
                {
                    object tokenValue;
                    string token = req.TryGetValue("lease_token", out tokenValue) ? (string)tokenValue : null;
                    PutTokens.Add(token);
                    var records = MiniJson.Arr(req["records"]).Select(MiniJson.Obj).ToList();
                    if (token != null)
                    {
                        // Fencing: the whole write is refused when the token lost any record's contract.
                        var lost = records.Where(r => !Holds((string)r["data_server"], (string)r["record_key"], token))
                            .Select(r => (object)Ref((string)r["data_server"], (string)r["record_key"])).ToList();
                        if (lost.Count > 0)
                        {
                            FencedPuts++;
                            LastFenceAnswer = MiniJson.Write(new Dictionary<string, object> {
                                { "message", "lease lost for " + lost.Count + " contract(s)" }, { "code", "lease_lost" }, { "contracts", lost } });
                            throw new HostServiceException("lease lost", LastFenceAnswer);
                        }
                    }
                    foreach (var record in records) Records[(string)record["id"]] = record;
                    return Json(new Dictionary<string, object>());
                }
                case HostMethods.LeasesAcquire:
                    return Acquire(req);
                case HostMethods.LeasesRenew:
                    return Renew(req);
                case HostMethods.LeasesRelease:
                    return Release(req);
                case "records.query":
                {
                    var filter = MiniJson.Obj(req.ContainsKey("filter") && req["filter"] != null ? req["filter"] : new Dictionary<string, object>());
                    IEnumerable<Dictionary<string, object>> rows = Records.Values;
                    object ids;
                    if (filter.TryGetValue("record_ids", out ids) && ids != null)
                    {
                        var idList = MiniJson.Arr(ids).Cast<string>().ToList();
                        rows = rows.Where(r => idList.Contains((string)r["id"]));
                    }
                    object key;
                    if (filter.TryGetValue("contract_key", out key) && key != null)
                        rows = rows.Where(r => (string)r["record_key"] == (string)key);
                    object status;
                    if (filter.TryGetValue("status", out status) && status != null)
                        rows = rows.Where(r => (string)r["status"] == (string)status);
                    var all = rows.OrderByDescending(r => (string)(MiniJson.Get(r, "sent_at") ?? MiniJson.Get(r, "created_at") ?? "")).ToList();
                    int offset = req.ContainsKey("offset") ? (int)(long)req["offset"] : 0;
                    int limit = req.ContainsKey("limit") ? (int)(long)req["limit"] : 50;
                    return Json(new Dictionary<string, object> {
                        { "total", (long)all.Count }, { "records", all.Skip(offset).Take(limit).Cast<object>().ToList() } });
                }
                case "records.store_file":
                    return Json(new Dictionary<string, object> { { "path", "/dev/null" } });
                default:
                    throw new HostServiceException("unknown method");
            }
        }

        public void Log(int level, string message)
        {
            LogLines.Add(level + " " + message);
        }

        public bool Progress(uint done, uint total, string detailJson)
        {
            ProgressCalls++;
            return false;
        }
    }

    /// <summary>A small but valid PDF (correct xref offsets) with the contract's data.</summary>
    static class Pdf
    {
        public static byte[] Contract(Contract c)
        {
            string text = "Contrato " + c.CodContrato + " - aluno RA " + c.Ra;
            string stream = "BT /F1 14 Tf 72 720 Td (" + text + ") Tj ET";
            var objects = new List<string>
            {
                "<< /Type /Catalog /Pages 2 0 R >>",
                "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
                "<< /Length " + stream.Length + " >>\nstream\n" + stream + "\nendstream",
                "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            };
            var sb = new StringBuilder("%PDF-1.4\n");
            var offsets = new List<int>();
            for (int i = 0; i < objects.Count; i++)
            {
                offsets.Add(sb.Length);
                sb.Append((i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n");
            }
            int xref = sb.Length;
            sb.Append("xref\n0 " + (objects.Count + 1) + "\n0000000000 65535 f \n");
            foreach (int offset in offsets) sb.Append(offset.ToString("D10") + " 00000 n \n");
            sb.Append("trailer\n<< /Size " + (objects.Count + 1) + " /Root 1 0 R >>\nstartxref\n" + xref + "\n%%EOF\n");
            return Encoding.ASCII.GetBytes(sb.ToString());
        }
    }

    /// <summary>The JSON exports declared with raw out pointers, so a test can pass NULL (the
    /// binding's `out` parameters never are).</summary>
    static class RawExports
    {
        [System.Runtime.InteropServices.DllImport(NativeMethods.Library, EntryPoint = "tae_edu_execute",
            CallingConvention = System.Runtime.InteropServices.CallingConvention.Cdecl)]
        public static extern int Execute(ref TaeEduHost host, byte[] request, UIntPtr requestLen, IntPtr response, IntPtr responseLen);

        [System.Runtime.InteropServices.DllImport(NativeMethods.Library, EntryPoint = "tae_edu_configure",
            CallingConvention = System.Runtime.InteropServices.CallingConvention.Cdecl)]
        public static extern int Configure(ref TaeEduHost host, byte[] request, UIntPtr requestLen, IntPtr response, IntPtr responseLen);
    }

    static class Program
    {
        static int passed, failed;

        static void Check(bool condition, string what, string context = null)
        {
            if (condition)
            {
                passed++;
                Console.WriteLine("ok   - " + what);
            }
            else
            {
                failed++;
                Console.WriteLine("FAIL - " + what + (context == null ? "" : "\n       " + context));
            }
        }

        static string Post(string url, string json)
        {
            var request = (HttpWebRequest)WebRequest.Create(url);
            request.Method = "POST";
            request.ContentType = "application/json";
            byte[] body = Encoding.UTF8.GetBytes(json);
            request.ContentLength = body.Length;
            using (var stream = request.GetRequestStream()) stream.Write(body, 0, body.Length);
            using (var response = (HttpWebResponse)request.GetResponse())
            using (var reader = new StreamReader(response.GetResponseStream(), Encoding.UTF8))
                return reader.ReadToEnd();
        }

        static string Execute(TaeEduPlugin plugin, string option, IEnumerable<string> keys, Dictionary<string, object> parameters)
        {
            var request = new Dictionary<string, object>
            {
                { "session", "dotnet-session-1" },
                { "invoked_from", new Dictionary<string, object> {
                    { "kind", "contract_view" }, { "contract_keys", keys.Cast<object>().ToList() } } },
                { "option", option },
                { "params", parameters },
            };
            var response = plugin.Execute(MiniJson.Write(request));
            Check(response.Ok, "execute " + option + " answers status 0", response.Json);
            return response.Json;
        }

        static List<Dictionary<string, object>> Results(string json)
        {
            var results = MiniJson.Get(MiniJson.Parse(json), "results") as List<object>;
            return results == null ? new List<Dictionary<string, object>>() : results.Select(MiniJson.Obj).ToList();
        }

        static int Main(string[] args)
        {
            if (args.Length < 1)
            {
                Console.Error.WriteLine("usage: HostTest.exe <tae-sim base URL>");
                return 2;
            }
            string taeUrl = args[0].TrimEnd('/');
            var host = new MemoryHost(taeUrl);
            host.Contracts.Add(new Contract { Key = "1;2026901;901", CodContrato = "901", Ra = "2026901", Student = "Ana Lúcia Araújo",
                Course = "Enfermagem", Period = "2026/1", Status = "Ativo", RespName = "Márcia Araújo", RespCpf = "529.982.247-25", RespEmail = "marcia.araujo@familia.example" });
            host.Contracts.Add(new Contract { Key = "1;2026902;902", CodContrato = "902", Ra = "2026902", Student = "João Araújo",
                Course = "Enfermagem", Period = "2026/1", Status = "Ativo", RespName = "Márcia Araújo", RespCpf = "529.982.247-25", RespEmail = "marcia.araujo@familia.example" });
            host.Contracts.Add(new Contract { Key = "1;2026903;903", CodContrato = "903", Ra = "2026903", Student = "Conceição Lima",
                Course = "Direito", Period = "2026/1", Status = "Ativo", RespName = "José Lima", RespCpf = "111.444.777-35", RespEmail = "jose.lima@familia.example" });
            var keys = host.Contracts.Select(c => c.Key).ToList();

            Check(NativeMethods.AbiVersion() == 1, "tae_edu_abi_version() is 1");
            using (var plugin = new TaeEduPlugin(host))
            {
                // configure: describe, validate, test
                var describe = plugin.Configure("{\"action\":\"describe\"}");
                var fields = MiniJson.Get(MiniJson.Parse(describe.Json), "fields") as List<object>;
                Check(describe.Ok && fields != null && fields.Count >= 10, "configure describe lists the parameter fields", describe.Json);

                var validateRequest = new Dictionary<string, object> { { "action", "validate" }, { "values", host.Params() } };
                var validate = plugin.Configure(MiniJson.Write(validateRequest));
                Check(validate.Ok, "configure validate accepts the parameters", validate.Json);

                var badValues = host.Params();
                badValues["api_url"] = "http://tae.example.com";
                var invalid = plugin.Configure(MiniJson.Write(new Dictionary<string, object> { { "action", "validate" }, { "values", badValues } }));
                Check(invalid.Status == (int)TaeEduStatus.InvalidConfig && invalid.Json.Contains("api_url"),
                      "configure validate refuses http:// to a non-loopback host, naming api_url", invalid.Json);

                var test = plugin.Configure("{\"action\":\"test\"}");
                Check(test.Ok && Equals(MiniJson.Get(MiniJson.Parse(test.Json), "login_ok"), true)
                      && Equals(MiniJson.Get(MiniJson.Parse(test.Json), "permissions", "send"), true),
                      "configure test logs in with the service user and reports permissions", test.Json);

                // send 3 contracts (the report rendered by this host)
                var sendParams = new Dictionary<string, object> {
                    { "source", new Dictionary<string, object> { { "kind", "report" }, { "report_code", "EDU.CONTRATO" } } } };
                var sent = Results(Execute(plugin, "send", keys, sendParams));
                Check(sent.Count == 3 && sent.All(r => (string)r["outcome"] == "sent" && r["document_id"] != null),
                      "send: the 3 contracts are sent, each with a TAE document id", MiniJson.Write(sent));
                Check(host.AuthPrompts == 1, "the authentication screen was shown once (" + host.AuthPrompts + ")");
                Check(host.CpfPrompts == 1, "the CPF screen registered the RM user once (" + host.CpfPrompts + ")");
                Check(host.ProgressCalls >= 3, "progress was reported per contract (" + host.ProgressCalls + " calls)");

                // the responsibles sign in the portal (tae-sim's side)
                foreach (var result in sent)
                {
                    var contract = host.Contracts.First(c => c.Key == (string)result["contract_key"]);
                    Post(taeUrl + "/_sim/documents/" + Convert.ToString(result["document_id"]) + "/act",
                         MiniJson.Write(new Dictionary<string, object> { { "email", contract.RespEmail } }));
                }

                // check: all finalised, contracts marked "Assinado", records finalizado
                var checkedResults = Results(Execute(plugin, "check", keys, new Dictionary<string, object>()));
                Check(checkedResults.Count == 3 && checkedResults.All(r => (string)r["outcome"] == "signed"),
                      "check: the 3 documents are signed", MiniJson.Write(checkedResults));
                Check(host.Contracts.All(c => c.Status == "Assinado"), "the 3 contracts are marked \"Assinado\" in the host",
                      string.Join(", ", host.Contracts.Select(c => c.CodContrato + "=" + c.Status)));
                Check(host.Records.Count == 3 && host.Records.Values.All(r => (string)r["status"] == "finalizado"
                      && r["document_id"] != null && ((string)r["sha256"]).Length == 64),
                      "3 integration records, each finalizado with its document id and SHA-256",
                      MiniJson.Write(host.Records.Values.Select(r => r["status"]).ToList()));
                Check(host.AuthPrompts == 1, "no second authentication within the session (" + host.AuthPrompts + ")");

                // attachment list
                var list = plugin.AttachmentList("{\"page\":1,\"page_size\":10}");
                Check(list.Ok && Equals(MiniJson.Get(MiniJson.Parse(list.Json), "total"), 3L),
                      "attachment_list lists the 3 records", list.Json);

                // reconcile: the record of 903 falls behind TAE (as if a check had been lost). A dry
                // run reports it and changes nothing; the fix mends exactly that record.
                var rec903 = host.Records.Values.First(r => (string)r["record_key"] == "1;2026903;903");
                rec903["status"] = "pendente";
                rec903["status_label"] = "Pendente";
                host.Contracts.First(c => c.Key == "1;2026903;903").Status = "Ativo";
                string recordsBefore903 = MiniJson.Write(host.Records.Values.Cast<object>().ToList());
                var dry = Results(Execute(plugin, "reconcile", keys, new Dictionary<string, object>()));
                Check(dry.Count == 3
                      && dry.Count(r => (string)r["outcome"] == "in_agreement") == 2
                      && dry.Any(r => (string)r["outcome"] == "record_behind" && (string)r["contract_key"] == "1;2026903;903"
                                 && Equals(MiniJson.Get(r, "finding", "mended"), false)
                                 && ((string)MiniJson.Get(r, "finding", "action")).Contains("Seria corrigido")),
                      "reconcile (dry run): 2 in agreement, 903 behind TAE, nothing mended", MiniJson.Write(dry));
                Check(MiniJson.Write(host.Records.Values.Cast<object>().ToList()) == recordsBefore903
                      && host.Contracts.First(c => c.Key == "1;2026903;903").Status == "Ativo",
                      "the dry run changed no record and no contract");
                var fixedResults = Results(Execute(plugin, "reconcile", keys, new Dictionary<string, object> { { "fix", true } }));
                Check(fixedResults.Count(r => Equals(MiniJson.Get(r, "finding", "mended"), true)) == 1
                      && fixedResults.Any(r => (string)r["outcome"] == "record_behind" && (string)r["contract_key"] == "1;2026903;903"
                                 && Equals(MiniJson.Get(r, "finding", "mended"), true)),
                      "reconcile (fix): exactly the record of 903 is mended", MiniJson.Write(fixedResults));
                rec903 = host.Records.Values.First(r => (string)r["record_key"] == "1;2026903;903");
                Check((string)rec903["status"] == "finalizado" && host.Contracts.First(c => c.Key == "1;2026903;903").Status == "Assinado",
                      "903 is finalizado again and \"Assinado\" in the host", (string)rec903["status"]);
                var badPeriod = plugin.Execute(MiniJson.Write(new Dictionary<string, object> {
                    { "session", "dotnet-session-1" },
                    { "invoked_from", new Dictionary<string, object> { { "kind", "contract_view" }, { "contract_keys", keys.Cast<object>().ToList() } } },
                    { "option", "reconcile" },
                    { "params", new Dictionary<string, object> { { "period", new Dictionary<string, object> { { "from", "31/10/2026" }, { "to", "2026-11-30" } } } } } }));
                Check(badPeriod.Status == (int)TaeEduStatus.InvalidRequest && badPeriod.Json.Contains("period.from"),
                      "reconcile refuses a bad period, naming period.from", badPeriod.Status + " " + badPeriod.Json);

                // Leases: a contract another application server holds (lease in the host's
                // database) is not sent and its holder is reported; once that lease expired
                // (the other server crashed), a rerun takes the contract over and sends it.
                Check(host.Acquires >= 2 && host.AcquireTokens.Distinct().Count() == host.AcquireTokens.Count,
                      "each execute asked leases.acquire, each run with its own token (" + host.Acquires + " calls)");
                Check(host.PutTokens.Count > 0 && host.PutTokens.All(t => t != null && host.AcquireTokens.Contains(t)),
                      "every records.put carried the run's lease token",
                      string.Join(", ", host.PutTokens.Select(t => t ?? "(none)")));
                Check(host.Leases.Count == 0, "each run released its leases when it ended (" + host.Leases.Count + " left)");
                host.Contracts.Add(new Contract { Key = "1;2026904;904", CodContrato = "904", Ra = "2026904", Student = "Bruno Lima",
                    Course = "Direito", Period = "2026/1", Status = "Ativo", RespName = "José Lima", RespCpf = "111.444.777-35", RespEmail = "jose.lima@familia.example" });
                host.PreLease("1;2026904;904", "run-outro-servidor", "tesouraria", "rm-app-2", TimeSpan.FromMinutes(2), TimeSpan.FromMinutes(5));
                var held = plugin.Execute(MiniJson.Write(new Dictionary<string, object> {
                    { "session", "dotnet-session-1" },
                    { "invoked_from", new Dictionary<string, object> { { "kind", "contract_view" }, { "contract_keys", new List<object> { "1;2026904;904" } } } },
                    { "option", "send" }, { "params", sendParams } }));
                Check(!host.Records.Values.Any(r => (string)r["record_key"] == "1;2026904;904"),
                      "no record is written for the contract another server holds");
                Check(host.Holds("EduContratoData", "1;2026904;904", "run-outro-servidor"), "the other server's lease is untouched");
                var heldResults = Results(held.Json);
                Check(held.Ok && heldResults.Count == 1 && (string)heldResults[0]["outcome"] == "held"
                      && ((string)heldResults[0]["message"]).Contains("tesouraria") && ((string)heldResults[0]["message"]).Contains("rm-app-2"),
                      "the contract is answered held at once, naming who holds it", held.Status + " " + held.Json);
                host.ClockOffset += TimeSpan.FromMinutes(6);
                var takenOver = Results(Execute(plugin, "send", new[] { "1;2026904;904" }, sendParams));
                Check(takenOver.Count == 1 && (string)takenOver[0]["outcome"] == "sent",
                      "after the other server's lease expired, the rerun takes the contract over and sends it", MiniJson.Write(takenOver));
                Check(host.Records.Values.Count(r => (string)r["record_key"] == "1;2026904;904") == 1,
                      "one record for the contract taken over");
                Check(host.FencedPuts == 0, "no write of this plugin was fenced (" + host.FencedPuts + ")");
                // This host's records.put fencing (docs/abi.md): a write whose token does not hold
                // a record's contract is refused as a whole, with code lease_lost and the contract.
                host.PreLease("fence-1", "run-x", "secretaria", "rm-app-1", TimeSpan.Zero, TimeSpan.FromMinutes(1));
                string fenced = null;
                int recordsBefore = host.Records.Count;
                try
                {
                    host.Call(HostMethods.RecordsPut, Encoding.UTF8.GetBytes(MiniJson.Write(new Dictionary<string, object> {
                        { "lease_token", "run-y" },
                        { "records", new List<object> { new Dictionary<string, object> {
                            { "id", "r-fence" }, { "data_server", "EduContratoData" }, { "record_key", "fence-1" } } } } })));
                }
                catch (HostServiceException e) { fenced = e.ErrorJson; }
                Check(fenced != null && fenced.Contains("\"code\":\"lease_lost\"") && fenced.Contains("fence-1")
                      && host.Records.Count == recordsBefore,
                      "records.put with a token that does not hold the contract is refused, naming it", fenced);

                // A failure answered with a whole JSON body (HostServiceException.ErrorJson) reaches
                // the plugin as that body: its message is reported, the exception's is not.
                host.FailPermissionWith = "{\"message\":\"perfil bloqueado pelo administrador\",\"code\":\"blocked\"}";
                var refused = plugin.Execute(MiniJson.Write(new Dictionary<string, object> {
                    { "session", "dotnet-session-1" },
                    { "invoked_from", new Dictionary<string, object> { { "kind", "contract_view" }, { "contract_keys", new List<object> { "1;2026901;901" } } } },
                    { "option", "check" }, { "params", new Dictionary<string, object>() } }));
                host.FailPermissionWith = null;
                Check(refused.Status == (int)TaeEduStatus.HostError && refused.Json.Contains("perfil bloqueado pelo administrador")
                      && !refused.Json.Contains("mensagem-que-nao-deve-aparecer"),
                      "a host failure with a JSON body reaches the plugin as that body", refused.Status + " " + refused.Json);

                // malformed requests
                var malformed = plugin.ExecuteRaw(Encoding.UTF8.GetBytes("{this is not json"));
                Check(malformed.Status == (int)TaeEduStatus.InvalidRequest
                      && MiniJson.Get(MiniJson.Parse(malformed.Json), "error", "code") != null,
                      "a malformed request answers INVALID_REQUEST with a JSON error", malformed.Status + " " + malformed.Json);
                var badUtf8 = plugin.ExecuteRaw(new byte[] { 0x7b, 0xff, 0xfe, 0x7d });
                Check(badUtf8.Status == (int)TaeEduStatus.InvalidUtf8, "invalid UTF-8 answers INVALID_UTF8", badUtf8.Status + " " + badUtf8.Json);

                // out pointers: a NULL response or responseLen is refused with NullArgument before
                // anything runs (the host table below is all zeros: had the plugin read it, the
                // answer would be InvalidHostTable), and the other, non-NULL one is cleared first.
                {
                    var zeroTable = new TaeEduHost();
                    byte[] describeBytes = Encoding.UTF8.GetBytes("{\"action\":\"describe\"}");
                    int both = RawExports.Configure(ref zeroTable, describeBytes, (UIntPtr)describeBytes.Length, IntPtr.Zero, IntPtr.Zero);
                    Check(both == (int)TaeEduStatus.NullArgument, "configure with NULL response and responseLen answers NullArgument", both.ToString());
                    IntPtr lenSlot = System.Runtime.InteropServices.Marshal.AllocHGlobal(IntPtr.Size);
                    IntPtr bufSlot = System.Runtime.InteropServices.Marshal.AllocHGlobal(IntPtr.Size);
                    try
                    {
                        System.Runtime.InteropServices.Marshal.WriteIntPtr(lenSlot, new IntPtr(77));
                        byte[] executeBytes = Encoding.UTF8.GetBytes("{\"session\":\"dotnet-session-1\",\"option\":\"check\",\"params\":{},"
                            + "\"invoked_from\":{\"kind\":\"contract_view\",\"contract_keys\":[\"1;2026901;901\"]}}");
                        int noOut = RawExports.Execute(ref zeroTable, executeBytes, (UIntPtr)executeBytes.Length, IntPtr.Zero, lenSlot);
                        Check(noOut == (int)TaeEduStatus.NullArgument && System.Runtime.InteropServices.Marshal.ReadIntPtr(lenSlot) == IntPtr.Zero,
                              "execute with a NULL response answers NullArgument and sets responseLen to 0",
                              noOut + " len=" + System.Runtime.InteropServices.Marshal.ReadIntPtr(lenSlot));
                        System.Runtime.InteropServices.Marshal.WriteIntPtr(bufSlot, new IntPtr(0x1234));
                        int noLen = RawExports.Execute(ref zeroTable, executeBytes, (UIntPtr)executeBytes.Length, bufSlot, IntPtr.Zero);
                        Check(noLen == (int)TaeEduStatus.NullArgument && System.Runtime.InteropServices.Marshal.ReadIntPtr(bufSlot) == IntPtr.Zero,
                              "execute with a NULL responseLen answers NullArgument and sets response to NULL",
                              noLen + " buf=" + System.Runtime.InteropServices.Marshal.ReadIntPtr(bufSlot));
                    }
                    finally
                    {
                        System.Runtime.InteropServices.Marshal.FreeHGlobal(lenSlot);
                        System.Runtime.InteropServices.Marshal.FreeHGlobal(bufSlot);
                    }
                }

                // secrets never reach the host's log
                Check(!host.LogLines.Any(l => l.Contains(MemoryHost.AdminPassword)), "the TAE password never appears in a log line");
            }
            Check(TaeEduPlugin.SessionEnd("dotnet-session-1") == 0, "tae_edu_session_end answers 0");
            Check(TaeEduPlugin.Shutdown() == 0 && TaeEduPlugin.Shutdown() == 0, "tae_edu_shutdown twice answers 0");

            Console.WriteLine("dotnet: " + passed + " passed, " + failed + " failed");
            return failed == 0 ? 0 : 1;
        }
    }
}
