//! `#[count_usage(errors)]`: every way out of the body passes the observation of its result,
//! and the body stays in the function (no closure, no `async` block), so borrows of `self`,
//! `impl Trait` in the result, `#[track_caller]` callers and the expected result type all
//! stay as they were.
//!
//! The body becomes a labeled block whose value is the result. Each `return` and `?` of the
//! body becomes a `break` to that label with the same value; those of closures, `async`
//! blocks and items inside the body are theirs and stay. `?` and `return` inside the standard
//! macros whose arguments are expressions (`format!`, `vec![..]`, `assert!`, ...) are rewritten
//! too. A `return` that another macro's expansion makes (`anyhow::bail!`) is not seen: the
//! call is counted, its error is not.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, Item, Lifetime, Macro, Token, Type};

/// The label of the block that holds the body.
const LABEL: &str = "'__telemetry_body";

/// Macros from `std` whose arguments are comma-separated expressions: a `?` in them returns
/// from the function.
const EXPRESSION_MACROS: &[&str] = &[
    "format",
    "print",
    "println",
    "eprint",
    "eprintln",
    "write",
    "writeln",
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "dbg",
    "format_args",
    "vec",
    "todo",
    "unimplemented",
    "unreachable",
];

/// The body as the expression of a labeled block whose value is the function's result, or
/// `None` if the body does not parse (the compiler then reports it on the original tokens).
pub(crate) fn result_block(body: &TokenStream, span: Span) -> Option<TokenStream> {
    let mut block: Block = syn::parse2(quote_spanned!(span=> { #body })).ok()?;
    let mut exits = Exits {
        label: Lifetime::new(LABEL, Span::call_site()),
        rewritten: false,
    };
    exits.visit_block_mut(&mut block);
    let block = block.into_token_stream();
    Some(if exits.rewritten {
        let label = &exits.label;
        quote!(#label: #block)
    } else {
        block
    })
}

/// The function's result type for a `let`: each `impl Trait` in it (not allowed there)
/// becomes `_`, inferred from the body.
pub(crate) fn let_type(ret: &Type) -> Type {
    struct Opaque;
    impl VisitMut for Opaque {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if matches!(ty, Type::ImplTrait(_)) {
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: Token![_](ty.span()),
                });
            } else {
                visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut ty = ret.clone();
    Opaque.visit_type_mut(&mut ty);
    ty
}

/// Rewrites the body's own exits into breaks to [`LABEL`].
struct Exits {
    label: Lifetime,
    rewritten: bool,
}

// The new expressions are tokens (`Expr::Verbatim`): `syn` would read `break 'l ::path` as
// a labeled expression `'l: ...`, which the compiler does not.
impl VisitMut for Exits {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            // Their `return` and `?` are their own.
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) => {}
            Expr::Return(ret) => {
                if let Some(value) = &mut ret.expr {
                    self.visit_expr_mut(value);
                }
                let label = &self.label;
                let value = ret.expr.as_ref().map(ToTokens::to_token_stream);
                let value = value.unwrap_or_else(|| quote_spanned!(ret.return_token.span=> ()));
                *expr = Expr::Verbatim(quote_spanned!(ret.return_token.span=> break #label #value));
                self.rewritten = true;
            }
            Expr::Try(question) => {
                self.visit_expr_mut(&mut question.expr);
                let label = &self.label;
                let inner = &question.expr;
                *expr = Expr::Verbatim(quote_spanned! {question.question_token.span=>
                    match #inner {
                        ::core::result::Result::Ok(__telemetry_value) => __telemetry_value,
                        ::core::result::Result::Err(__telemetry_error) => {
                            break #label ::core::result::Result::Err(
                                ::telemetry_core::__private::from_error(__telemetry_error),
                            )
                        }
                    }
                });
                self.rewritten = true;
            }
            Expr::Macro(call) => self.visit_macro_arguments(&mut call.mac),
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_stmt_macro_mut(&mut self, stmt: &mut syn::StmtMacro) {
        self.visit_macro_arguments(&mut stmt.mac);
    }

    // A nested function or impl has its own returns.
    fn visit_item_mut(&mut self, _: &mut Item) {}
}

impl Exits {
    /// The arguments of a standard expression macro, rewritten if they hold an exit.
    fn visit_macro_arguments(&mut self, mac: &mut Macro) {
        let known = mac
            .path
            .segments
            .last()
            .is_some_and(|last| EXPRESSION_MACROS.contains(&last.ident.to_string().as_str()));
        if !known {
            return;
        }
        let Ok(mut args) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
        else {
            return;
        };
        let before = self.rewritten;
        self.rewritten = false;
        for arg in &mut args {
            self.visit_expr_mut(arg);
        }
        if self.rewritten {
            mac.tokens = args.into_token_stream();
        }
        self.rewritten |= before;
    }
}
