//! The exit codes of `host-sim`, for scheduled jobs (documented in `--help`).

use std::process::ExitCode;

/// Everything asked was done.
pub const OK: u8 = 0;
/// host-sim could not run: the database is missing or belongs to another program, the plugin
/// cannot be loaded, a file cannot be read or written.
pub const CANNOT_RUN: u8 = 1;
/// The command line is wrong (an unknown option, a value outside the accepted ones).
pub const USAGE: u8 = 2;
/// The run went through but some contracts failed, were not processed (e.g. after Ctrl-C) or
/// are being processed by another run.
pub const PARTIAL: u8 = 3;
/// The plugin refused the call (invalid parameters, authentication cancelled or refused,
/// missing permission) or the connection test could not log in; nothing was done.
pub const REFUSED: u8 = 4;
/// Nothing matched the filter, the contract keys or the record ids.
pub const NOTHING_MATCHED: u8 = 5;
/// A second Ctrl-C: stopped at once (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// The `--help` text that lists them.
pub const HELP: &str = "\
Códigos de saída (para tarefas agendadas):
  0    tudo o que foi pedido foi feito
  1    o host-sim não pôde rodar (banco de dados inexistente ou de outro programa, plugin
       ausente, arquivo que não pôde ser lido ou gravado)
  2    linha de comando inválida (opção desconhecida, valor fora dos aceitos)
  3    a execução terminou, mas algum contrato falhou, não foi processado (por exemplo após
       Ctrl-C) ou está em processamento por outra execução
  4    o plugin recusou a chamada (parâmetros inválidos, autenticação cancelada ou recusada,
       sem permissão) ou o teste de conexão não conseguiu entrar; nada foi feito
  5    nenhum contrato ou registro encontrado para o filtro, as chaves ou os registros
  130  interrompido por um segundo Ctrl-C

Ctrl-C durante uma execução pede ao plugin que pare: os contratos em andamento terminam, os
demais ficam como não processados e o resumo é mostrado. Um segundo Ctrl-C encerra na hora.";

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
