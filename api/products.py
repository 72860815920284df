"""`/api/products/`: thin HTTP shapes over importer.products."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import CurrentUser, SessionDep
from api.pagination import Page, page_links
from importer import export, products
from importer.models import ProductCreate, ProductPublic, ProductUpdate

router = APIRouter(prefix="/api/products", tags=["products"])


def product_filter(
    sku: Optional[str] = None,
    name: Optional[str] = None,
    description: Optional[str] = None,
    is_active: Optional[bool] = None,
    search: Optional[str] = None,
) -> products.ProductFilter:
    return products.ProductFilter(sku=sku, name=name, description=description, is_active=is_active, search=search)


FilterDep = Annotated[products.ProductFilter, Depends(product_filter)]


@router.get("/", response_model=Page[ProductPublic])
def list_products(
    request: Request,
    session: SessionDep,
    _: CurrentUser,
    filters: FilterDep,
    ordering: Optional[str] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=products.MAX_PAGE_SIZE)] = products.DEFAULT_PAGE_SIZE,
) -> Page[ProductPublic]:
    result = products.list_products(session, filters, page=page, page_size=page_size, ordering=ordering)
    next_url, previous_url = page_links(request, page, result.has_next)
    return Page[ProductPublic](
        count=result.count,
        next=next_url,
        previous=previous_url,
        results=[ProductPublic.model_validate(product) for product in result.results],
    )


@router.post("/", status_code=201, response_model=ProductPublic)
def create_product(data: ProductCreate, session: SessionDep, _: CurrentUser) -> ProductPublic:
    return ProductPublic.model_validate(products.create_product(session, data))


@router.delete("/bulk-delete/")
def delete_all_products(session: SessionDep, _: CurrentUser) -> dict[str, int]:
    return {"deleted": products.delete_all_products(session)}


@router.get(
    "/export/",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The matching products as CSV."}},
)
def export_products(
    _: CurrentUser,
    filters: FilterDep,
    safe: Annotated[bool, Query(description="Prefix formula-like cells with ' (for spreadsheets, not for re-import)")] = False,
) -> StreamingResponse:
    return StreamingResponse(
        export.stream_csv(filters, safe=safe),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{export.export_filename()}"'},
    )


@router.get("/{product_id}/", response_model=ProductPublic)
def get_product(product_id: int, session: SessionDep, _: CurrentUser) -> ProductPublic:
    return ProductPublic.model_validate(products.get_product(session, product_id))


@router.put("/{product_id}/", response_model=ProductPublic)
def replace_product(product_id: int, data: ProductCreate, session: SessionDep, _: CurrentUser) -> ProductPublic:
    update = ProductUpdate(**data.model_dump())
    return ProductPublic.model_validate(products.update_product(session, product_id, update, partial=False))


@router.patch("/{product_id}/", response_model=ProductPublic)
def patch_product(product_id: int, data: ProductUpdate, session: SessionDep, _: CurrentUser) -> ProductPublic:
    return ProductPublic.model_validate(products.update_product(session, product_id, data, partial=True))


@router.delete("/{product_id}/", status_code=204)
def delete_product(product_id: int, session: SessionDep, _: CurrentUser) -> Response:
    products.delete_product(session, product_id)
    return Response(status_code=204)
